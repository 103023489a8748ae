// Mono audio files through libsndfile: WAV (16/24/32-bit PCM, 32/64-bit float) read into
// floats in [-1, 1], written as 32-bit float WAV (or 16/24-bit PCM). Anything else — not a
// sound file, more than one channel, no samples — is an AudioError naming the file.
#pragma once

#include <sndfile.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace amp {

struct AudioError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Audio {
  std::vector<float> samples;
  int sample_rate = 0;
};

inline Audio read_wav(const std::string& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) throw AudioError(path + ": cannot read as audio: " + sf_strerror(nullptr));
  struct Close {
    SNDFILE* f;
    ~Close() { sf_close(f); }
  } close{f};
  if ((info.format & SF_FORMAT_TYPEMASK) != SF_FORMAT_WAV)
    throw AudioError(path + ": not a WAV file");
  if (info.channels != 1)
    throw AudioError(path + ": has " + std::to_string(info.channels) +
                     " channels; amp models mono audio (split or mix it first)");
  if (info.frames <= 0) throw AudioError(path + ": has no samples");
  if (info.samplerate <= 0) throw AudioError(path + ": sample rate " + std::to_string(info.samplerate));
  Audio a;
  a.sample_rate = info.samplerate;
  a.samples.resize(static_cast<std::size_t>(info.frames));
  const sf_count_t got = sf_readf_float(f, a.samples.data(), info.frames);
  if (got != info.frames)
    throw AudioError(path + ": read " + std::to_string(got) + " of " + std::to_string(info.frames) +
                     " samples: " + sf_strerror(f));
  return a;
}

enum class Encoding { Float32, Pcm16, Pcm24 };

/// Writes `path` via a temporary file beside it and a rename (never a half-written file).
inline void write_wav(const std::string& path, const std::vector<float>& samples, int sample_rate,
                      Encoding encoding = Encoding::Float32) {
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | (encoding == Encoding::Pcm16   ? SF_FORMAT_PCM_16
                                 : encoding == Encoding::Pcm24 ? SF_FORMAT_PCM_24
                                                               : SF_FORMAT_FLOAT);
  const std::string tmp = path + ".tmp";
  SNDFILE* f = sf_open(tmp.c_str(), SFM_WRITE, &info);
  if (!f) throw AudioError(path + ": cannot write: " + sf_strerror(nullptr));
  if (encoding != Encoding::Float32) sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  // No PEAK chunk: it holds the time of writing, and the same audio should be the same file.
  sf_command(f, SFC_SET_ADD_PEAK_CHUNK, nullptr, SF_FALSE);
  const sf_count_t n = static_cast<sf_count_t>(samples.size());
  const sf_count_t put = sf_writef_float(f, samples.data(), n);
  const std::string err = sf_strerror(f);
  if (sf_close(f) != 0 || put != n) {
    std::remove(tmp.c_str());
    throw AudioError(path + ": write failed: " + err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw AudioError(path + ": cannot rename the written file into place");
  }
}

}  // namespace amp
