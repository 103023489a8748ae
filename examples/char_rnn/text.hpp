// Text side of char_rnn: UTF-8 characters, the vocabulary, and the batches.
//
// The training text is split into `batch` parallel streams (stream b is the b-th contiguous
// slice); batch i holds positions [i*seq, (i+1)*seq) of every stream and the targets one
// position later, so consecutive batches continue each stream and the hidden state can be
// carried from one to the next (truncated back-propagation through time).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <recur/recur.hpp>

namespace char_rnn {

using recur::Index;

/// Splits UTF-8 text into characters (each a string of 1-4 bytes). Strict, as RFC 3629 and
/// the JSON writer that saves the vocabulary: overlong forms, surrogates (U+D800-DFFF), code
/// points above U+10FFFF and stray bytes are errors naming the byte offset, so whatever trains
/// can be saved.
inline std::vector<std::string> utf8_chars(const std::string& text) {
  std::vector<std::string> out;
  out.reserve(text.size());
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = byte(i);
    // Length, and the range of the second byte (it excludes overlongs, surrogates and
    // > U+10FFFF); further bytes are 80..BF.
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) n = 1;
    else if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong below U+0800
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) lo = 0x90;  // overlong below U+10000
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    }
    bool ok = n != 0 && i + n <= text.size();
    for (std::size_t k = 1; ok && k < n; ++k)
      ok = byte(i + k) >= (k == 1 ? lo : 0x80) && byte(i + k) <= (k == 1 ? hi : 0xBF);
    if (!ok) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", c);
      throw std::runtime_error("the text is not valid UTF-8 (byte " + std::to_string(i) + ", " +
                               hex +
                               (n == 0 ? ": not a valid lead byte)"
                                       : ": an invalid, overlong or truncated sequence)"));
    }
    out.push_back(text.substr(i, n));
    i += n;
  }
  return out;
}

/// The characters of a text, sorted (by their UTF-8 bytes, i.e. by code point); id = index.
class Vocab {
 public:
  Vocab() = default;
  explicit Vocab(std::vector<std::string> chars) : chars_(std::move(chars)) {
    for (std::size_t i = 0; i < chars_.size(); ++i)
      if (!ids_.emplace(chars_[i], static_cast<Index>(i)).second)
        throw std::runtime_error("vocabulary lists the character '" + chars_[i] + "' twice");
  }
  static Vocab of(const std::vector<std::string>& text) {
    std::vector<std::string> chars(text);
    std::sort(chars.begin(), chars.end());
    chars.erase(std::unique(chars.begin(), chars.end()), chars.end());
    return Vocab(std::move(chars));
  }
  Index size() const { return static_cast<Index>(chars_.size()); }
  const std::vector<std::string>& chars() const { return chars_; }
  const std::string& chr(Index id) const { return chars_[static_cast<std::size_t>(id)]; }
  bool contains(const std::string& c) const { return ids_.count(c) != 0; }
  Index id(const std::string& c) const {
    auto it = ids_.find(c);
    if (it == ids_.end()) throw std::runtime_error("character " + printable(c) + " is not in the vocabulary");
    return it->second;
  }
  std::vector<std::int32_t> encode(const std::vector<std::string>& text) const {
    std::vector<std::int32_t> ids(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<std::int32_t>(id(text[i]));
    return ids;
  }
  static std::string printable(const std::string& c) {
    if (c == "\n") return "'\\n'";
    if (c == "\t") return "'\\t'";
    if (c.size() == 1 && static_cast<unsigned char>(c[0]) < 0x20)
      return "byte " + std::to_string(static_cast<int>(c[0]));
    return "'" + c + "'";
  }

 private:
  std::vector<std::string> chars_;
  std::map<std::string, Index> ids_;
};

/// `batch` parallel streams over `ids`, cut into chunks of `seq` steps.
class Streams {
 public:
  Streams() = default;
  /// The text cut into `batch` streams; chunk() gives the rows [first, first + rows) of them
  /// (rows < 0: all; under MPI each rank takes its share of the streams).
  Streams(const std::vector<std::int32_t>& ids, Index batch, Index seq, Index first = 0, Index rows = -1)
      : batch_(rows < 0 ? batch : rows),
        first_(first),
        seq_(seq),
        length_(batch > 0 ? static_cast<Index>(ids.size()) / batch : 0) {
    if (batch <= 0 || seq <= 0) throw std::invalid_argument("batch and sequence length must be positive");
    if (first < 0 || batch_ < 0 || first + batch_ > batch)
      throw std::invalid_argument("streams [" + std::to_string(first) + ", " + std::to_string(first + batch_) +
                                  ") are not among the " + std::to_string(batch));
    data_.assign(ids.begin(), ids.begin() + batch * length_);
  }
  /// The streams chunk() gives (rows of a chunk).
  Index batch() const { return batch_; }
  Index seq() const { return seq_; }
  /// Chunks of exactly seq steps (the training batches of one epoch).
  Index full_chunks() const { return length_ > 0 ? (length_ - 1) / seq_ : 0; }
  /// Chunks per pass: each needs seq inputs and the next character as the last target.
  Index chunks() const { return length_ > 1 ? (length_ - 2) / seq_ + 1 : 0; }
  /// Steps of chunk i (the last one may be shorter when the streams do not divide evenly).
  Index steps(Index i) const { return std::min(seq_, length_ - 1 - i * seq_); }
  /// Inputs and targets of chunk i: [batch, steps(i)].
  void chunk(Index i, recur::Tokens& x, recur::Tokens& y) const {
    const Index S = steps(i);
    x.resize(batch_, S);
    y.resize(batch_, S);
    for (Index b = 0; b < batch_; ++b)
      for (Index t = 0; t < S; ++t) {
        const std::size_t at = static_cast<std::size_t>((first_ + b) * length_ + i * seq_ + t);
        x(b, t) = data_[at];
        y(b, t) = data_[at + 1];
      }
  }

 private:
  Index batch_ = 0, first_ = 0, seq_ = 0, length_ = 0;
  std::vector<std::int32_t> data_;
};

}  // namespace char_rnn
