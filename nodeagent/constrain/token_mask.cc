// nodeagent/constrain/token_mask.cc — see token_mask.h.
#include "nodeagent/constrain/token_mask.h"

#include <algorithm>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace agentry::constrain {

using internal::Frame;
using internal::StepResult;

namespace {

// The walk's state at one depth of the trie: a whole matcher state (`anchor`) and, per
// stack of it, the top frame after this prefix's bytes (node == nullptr: the stack died).
struct Level {
  const Matcher* anchor = nullptr;
  std::vector<Frame> tops;
};

// The code points of `piece` if it is whole UTF-8 characters with no quote, backslash or
// control character (what a JSON string takes raw), else -1.
int64_t PlainCodePoints(const std::string& piece) {
  int64_t n = 0;
  for (size_t i = 0; i < piece.size();) {
    const auto c = static_cast<unsigned char>(piece[i]);
    size_t len;
    if (c < 0x20 || c == '"' || c == '\\') return -1;
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
    } else {
      return -1;
    }
    if (i + len > piece.size()) return -1;
    // The continuation bytes, with the narrower first ranges that exclude overlong forms,
    // surrogates and code points past U+10FFFF.
    for (size_t k = 1; k < len; ++k) {
      const auto d = static_cast<unsigned char>(piece[i + k]);
      unsigned char low = 0x80;
      unsigned char high = 0xBF;
      if (k == 1) {
        if (c == 0xE0) low = 0xA0;
        if (c == 0xED) high = 0x9F;
        if (c == 0xF0) low = 0x90;
        if (c == 0xF4) high = 0x8F;
      }
      if (d < low || d > high) return -1;
    }
    i += len;
    ++n;
  }
  return n;
}

}  // namespace

TokenMasker::TokenMasker(const engine::Tokenizer& tokenizer) : n_vocab_(tokenizer.n_vocab()) {
  pieces_.resize(n_vocab_);
  std::vector<int32_t> with_bytes;
  std::vector<int32_t> other;
  for (int32_t id = 0; id < n_vocab_; ++id) {
    if (tokenizer.IsEndOfGeneration(id)) {
      end_of_generation_.push_back(id);
      continue;
    }
    pieces_[id] = tokenizer.Piece(id);
    if (pieces_[id].empty()) {
      never_.push_back(id);
      continue;
    }
    with_bytes.push_back(id);
    const int64_t code_points = PlainCodePoints(pieces_[id]);
    if (code_points < 0) {
      other.push_back(id);
    } else {
      plain_.push_back(id);
      plain_code_points_.push_back(
          static_cast<uint32_t>(std::min<int64_t>(code_points, kUnbounded)));
    }
  }
  all_ = BuildTrie(std::move(with_bytes));
  other_ = BuildTrie(std::move(other));
}

TokenMasker::Trie TokenMasker::BuildTrie(std::vector<int32_t> ids) const {
  Trie t;
  // Sorted pieces list the trie in depth-first order: each piece adds the nodes below its
  // common prefix with the one before, and a piece comes before those it is a prefix of.
  std::stable_sort(ids.begin(), ids.end(),
                   [this](int32_t x, int32_t y) { return pieces_[x] < pieces_[y]; });
  const std::string* previous = nullptr;
  for (int32_t id : ids) {
    const std::string& piece = pieces_[id];
    size_t common = 0;
    if (previous != nullptr) {
      while (common < piece.size() && common < previous->size() &&
             piece[common] == (*previous)[common]) {
        ++common;
      }
    }
    for (size_t d = common; d < piece.size(); ++d) {
      t.byte.push_back(static_cast<uint8_t>(piece[d]));
      t.depth.push_back(static_cast<uint32_t>(d + 1));
      t.token_begin.push_back(static_cast<uint32_t>(t.tokens.size()));
    }
    t.tokens.push_back(id);  // ends at the newest node (a repeated piece: the same one)
    t.max_depth = std::max(t.max_depth, piece.size());
    previous = &piece;
  }
  const size_t n = t.byte.size();
  t.token_begin.push_back(static_cast<uint32_t>(t.tokens.size()));
  // A subtree ends at the next node that is not deeper.
  t.skip.assign(n, static_cast<uint32_t>(n));
  std::vector<uint32_t> open;
  for (size_t i = 0; i < n; ++i) {
    while (!open.empty() && t.depth[open.back()] >= t.depth[i]) {
      t.skip[open.back()] = static_cast<uint32_t>(i);
      open.pop_back();
    }
    open.push_back(static_cast<uint32_t>(i));
  }
  return t;
}

void TokenMasker::Mask(const Matcher& m, std::vector<uint8_t>* allowed) const {
  std::vector<uint8_t>& out = *allowed;
  const size_t size = out.size();
  for (size_t id = static_cast<size_t>(n_vocab_); id < size; ++id) out[id] = 0;
  auto clear = [&out, size](int32_t id) {
    if (static_cast<size_t>(id) < size) out[id] = 0;
  };
  for (int32_t id : never_) clear(id);
  if (!m.IsComplete()) {
    for (int32_t id : end_of_generation_) clear(id);
  }
  // Is every live stack between two characters of a JSON string? Then plain tokens need
  // only fit; `room` is the most code points any of those strings may still take.
  bool in_string = false;
  uint32_t room = 0;
  for (size_t s = 0; s < m.ends_.size(); ++s) {
    const uint32_t b = m.begin(s);
    const uint32_t e = m.ends_[s];
    if (b == e) continue;  // complete: takes no bytes
    uint32_t r;
    if (!internal::InStringBody(m.frames_[e - 1], &r)) {
      in_string = false;
      break;
    }
    in_string = true;
    room = std::max(room, r);
  }
  if (!in_string) {
    Walk(all_, m, allowed);
    return;
  }
  for (size_t k = 0; k < plain_.size(); ++k) {
    if (plain_code_points_[k] > room) clear(plain_[k]);
  }
  Walk(other_, m, allowed);
}

void TokenMasker::TopFrames(const Matcher& m, std::vector<Frame>* tops) {
  tops->clear();
  for (size_t s = 0; s < m.ends_.size(); ++s) {
    const uint32_t b = m.begin(s);
    const uint32_t e = m.ends_[s];
    tops->push_back(b == e ? Frame{nullptr, 0, 0} : m.frames_[e - 1]);
  }
}

void TokenMasker::Walk(const Trie& trie, const Matcher& m, std::vector<uint8_t>* allowed) const {
  std::vector<uint8_t>& out = *allowed;
  const size_t size = out.size();
  // Levels and whole states are reused across calls on a thread, so a step allocates
  // nothing once warm.
  thread_local std::vector<Level> levels;
  thread_local std::vector<std::unique_ptr<Matcher>> states;
  if (levels.size() < trie.max_depth + 1) levels.resize(trie.max_depth + 1);
  while (states.size() < trie.max_depth + 1) states.emplace_back(new Matcher());
  Level& root = levels[0];
  root.anchor = &m;
  TopFrames(m, &root.tops);

  const size_t n = trie.byte.size();
  for (size_t i = 0; i < n;) {
    const uint32_t depth = trie.depth[i];
    const Level& parent = levels[depth - 1];
    Level& child = levels[depth];
    const unsigned char byte = trie.byte[i];
    // Step only the top frames while every live stack stays inside its terminal.
    const size_t k = parent.tops.size();
    child.tops.resize(k);
    bool alive = false;
    bool whole = false;  // some terminal ended or may end: build the whole state
    for (size_t s = 0; s < k && !whole; ++s) {
      Frame f = parent.tops[s];
      if (f.node == nullptr) {
        child.tops[s] = f;
        continue;
      }
      switch (internal::StepTerminal(&f, byte)) {
        case StepResult::kReject:
          child.tops[s].node = nullptr;
          break;
        case StepResult::kStay:
          child.tops[s] = f;
          alive = true;
          break;
        case StepResult::kStayOrPop:
        case StepResult::kPop:
          whole = true;
          break;
      }
    }
    if (whole) {
      Matcher& state = *states[depth];
      alive = Matcher::AdvanceFrom(*parent.anchor, parent.tops.data(), byte, &state);
      if (alive) {
        child.anchor = &state;
        TopFrames(state, &child.tops);
      }
    } else {
      child.anchor = parent.anchor;
    }
    if (alive) {
      ++i;
      continue;
    }
    const uint32_t skip = trie.skip[i];
    for (uint32_t t = trie.token_begin[i]; t < trie.token_begin[skip]; ++t) {
      const int32_t id = trie.tokens[t];
      if (static_cast<size_t>(id) < size) out[id] = 0;
    }
    i = skip;
  }
}

Status TokenMasker::Accept(Matcher* m, int32_t token) const {
  if (token < 0 || token >= n_vocab_) {
    return InvalidArgumentError("token " + std::to_string(token) +
                                " is outside the vocabulary of " + std::to_string(n_vocab_));
  }
  if (std::binary_search(end_of_generation_.begin(), end_of_generation_.end(), token)) {
    if (m->IsComplete()) return OkStatus();
    return FailedPreconditionError(
        "token " + std::to_string(token) +
        " ends the generation, but the constrained text is not complete");
  }
  const std::string& piece = pieces_[token];
  if (piece.empty()) {
    return FailedPreconditionError("token " + std::to_string(token) +
                                   " is a control token, which constrained text cannot contain");
  }
  if (!m->AdvanceAll(piece)) {
    return FailedPreconditionError(
        "token " + std::to_string(token) + " (" +
        nlohmann::json(piece).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
        ") cannot come next in the constrained text");
  }
  return OkStatus();
}

engine::TokenMask TokenMasker::MaskFor(const Matcher* m) const {
  return [this, m](std::vector<uint8_t>* allowed) { Mask(*m, allowed); };
}

}  // namespace agentry::constrain
