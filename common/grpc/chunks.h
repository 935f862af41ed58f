// common/grpc/chunks.h — a byte blob (a KV snapshot) over a gRPC client stream, in chunks, the
// same way by every client: each message carries `data`; the first also carries what names
// the blob.
//
//   grpc::Status s = ReadChunks(reader.get(), &bytes);
//   grpc::Status s = WriteChunks(writer.get(), bytes,
//                                [&](pb::RestoreRequest* first) { *first->mutable_open() = open;
//                                });
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <grpcpp/support/status.h>
#include <grpcpp/support/sync_stream.h>

namespace agentry {

inline constexpr size_t kBlobChunkBytes = size_t{1} << 20;  // well under gRPC's 4 MiB limit

// Appends every message's data to `bytes`; the stream's final status.
template <typename Chunk>
grpc::Status ReadChunks(grpc::ClientReader<Chunk>* reader, std::string* bytes) {
  Chunk chunk;
  while (reader->Read(&chunk)) bytes->append(chunk.data());
  return reader->Finish();
}

// Sends `bytes` (at least one message, even for none); `name_first` fills the first message's
// other fields. The stream's final status.
template <typename Request, typename NameFirst>
grpc::Status WriteChunks(grpc::ClientWriter<Request>* writer, std::string_view bytes,
                         const NameFirst& name_first) {
  for (size_t at = 0; at == 0 || at < bytes.size(); at += kBlobChunkBytes) {
    Request request;
    if (at == 0) name_first(&request);
    request.set_data(std::string(bytes.substr(at, kBlobChunkBytes)));
    if (!writer->Write(request)) break;  // the server ended the call: Finish says why
  }
  writer->WritesDone();
  return writer->Finish();
}

}  // namespace agentry
