// runtime/constrain/token_mask.cc — see token_mask.h.
#include "runtime/constrain/token_mask.h"

#include <algorithm>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace agentry::runtime::constrain {

using internal::Frame;
using internal::StepResult;

namespace {

// The walk's state at one depth of the trie: a whole matcher state (`anchor`) and, per
// stack of it, the top frame after this prefix's bytes (node == nullptr: the stack died).
struct Level {
  const Matcher* anchor = nullptr;
  std::vector<Frame> tops;
};

}  // namespace

TokenMasker::TokenMasker(const engine::Tokenizer& tokenizer) : n_vocab_(tokenizer.n_vocab()) {
  pieces_.resize(n_vocab_);
  std::vector<int32_t> with_bytes;
  for (int32_t id = 0; id < n_vocab_; ++id) {
    if (tokenizer.IsEndOfGeneration(id)) {
      end_of_generation_.push_back(id);
      continue;
    }
    pieces_[id] = tokenizer.Piece(id);
    if (pieces_[id].empty()) {
      never_.push_back(id);
    } else {
      with_bytes.push_back(id);
    }
  }
  // Sorted pieces list the trie in depth-first order: each piece adds the nodes below its
  // common prefix with the one before, and a piece comes before those it is a prefix of.
  std::stable_sort(with_bytes.begin(), with_bytes.end(),
                   [this](int32_t x, int32_t y) { return pieces_[x] < pieces_[y]; });
  const std::string* previous = nullptr;
  for (int32_t id : with_bytes) {
    const std::string& piece = pieces_[id];
    size_t common = 0;
    if (previous != nullptr) {
      while (common < piece.size() && common < previous->size() &&
             piece[common] == (*previous)[common]) {
        ++common;
      }
    }
    for (size_t d = common; d < piece.size(); ++d) {
      byte_.push_back(static_cast<uint8_t>(piece[d]));
      depth_.push_back(static_cast<uint32_t>(d + 1));
      token_begin_.push_back(static_cast<uint32_t>(tokens_.size()));
    }
    tokens_.push_back(id);  // ends at the newest node (a repeated piece: the same one)
    max_depth_ = std::max(max_depth_, piece.size());
    previous = &piece;
  }
  const size_t n = byte_.size();
  token_begin_.push_back(static_cast<uint32_t>(tokens_.size()));
  // A subtree ends at the next node that is not deeper.
  skip_.assign(n, static_cast<uint32_t>(n));
  std::vector<uint32_t> open;
  for (size_t i = 0; i < n; ++i) {
    while (!open.empty() && depth_[open.back()] >= depth_[i]) {
      skip_[open.back()] = static_cast<uint32_t>(i);
      open.pop_back();
    }
    open.push_back(static_cast<uint32_t>(i));
  }
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

  // Levels and whole states are reused across calls on a thread, so a step allocates
  // nothing once warm.
  thread_local std::vector<Level> levels;
  thread_local std::vector<std::unique_ptr<Matcher>> states;
  if (levels.size() < max_depth_ + 1) levels.resize(max_depth_ + 1);
  while (states.size() < max_depth_ + 1) states.emplace_back(new Matcher());
  Level& root = levels[0];
  root.anchor = &m;
  root.tops.clear();
  for (size_t s = 0; s < m.ends_.size(); ++s) {
    const uint32_t b = m.begin(s);
    const uint32_t e = m.ends_[s];
    root.tops.push_back(b == e ? Frame{nullptr, 0, 0} : m.frames_[e - 1]);
  }

  const size_t n = byte_.size();
  for (size_t i = 0; i < n;) {
    const uint32_t depth = depth_[i];
    const Level& parent = levels[depth - 1];
    Level& child = levels[depth];
    const unsigned char byte = byte_[i];
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
        child.tops.clear();
        for (size_t s = 0; s < state.ends_.size(); ++s) {
          const uint32_t b = state.begin(s);
          const uint32_t e = state.ends_[s];
          child.tops.push_back(b == e ? Frame{nullptr, 0, 0} : state.frames_[e - 1]);
        }
      }
    } else {
      child.anchor = parent.anchor;
    }
    if (alive) {
      ++i;
      continue;
    }
    for (uint32_t t = token_begin_[i]; t < token_begin_[skip_[i]]; ++t) clear(tokens_[t]);
    i = skip_[i];
  }
}

Status TokenMasker::Accept(Matcher* m, int32_t token) const {
  if (token < 0 || token >= n_vocab_) {
    return InvalidArgumentError("token " + std::to_string(token) + " is outside the vocabulary of " +
                                std::to_string(n_vocab_));
  }
  if (std::binary_search(end_of_generation_.begin(), end_of_generation_.end(), token)) {
    if (m->IsComplete()) return OkStatus();
    return FailedPreconditionError("token " + std::to_string(token) +
                                   " ends the generation, but the constrained text is not complete");
  }
  const std::string& piece = pieces_[token];
  if (piece.empty()) {
    return FailedPreconditionError("token " + std::to_string(token) +
                                   " is a control token, which constrained text cannot contain");
  }
  if (!m->AdvanceAll(piece)) {
    return FailedPreconditionError("token " + std::to_string(token) + " (" +
                                   nlohmann::json(piece).dump(-1, ' ', false,
                                                              nlohmann::json::error_handler_t::replace) +
                                   ") cannot come next in the constrained text");
  }
  return OkStatus();
}

engine::TokenMask TokenMasker::MaskFor(const Matcher* m) const {
  return [this, m](std::vector<uint8_t>* allowed) { Mask(*m, allowed); };
}

}  // namespace agentry::runtime::constrain
