// A log-bucket latency histogram in the manner of HdrHistogram: every value recorded, in buckets whose
// width is at most 1/64 of their lower bound (values below 128 ns exact), so p99.9 and max are real
// measurements and memory is fixed (~2300 counters up to 2^40 ns). Percentiles report the middle of
// the bucket that holds the rank ceil(p × count); max and mean are exact.
#ifndef ANYSRC_LATENCY_HISTOGRAM_H
#define ANYSRC_LATENCY_HISTOGRAM_H
#include <stdint.h>
#include <string.h>

#define HIST_SUB 64
#define HIST_BUCKETS ((40 - 6) * HIST_SUB + 2 * HIST_SUB)

struct histogram {
  uint64_t counts[HIST_BUCKETS];
  uint64_t count, max, sum;
};

static inline int hist_index(uint64_t v) {
  if (v < 2 * HIST_SUB) return (int)v;
  int e = 63 - __builtin_clzll(v);                 // 2^e <= v
  int i = (e - 6) * HIST_SUB + (int)(v >> (e - 6)); // v >> (e-6) is in [64, 128)
  return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

// [low, low + width) of bucket i.
static inline void hist_bounds(int i, uint64_t *low, uint64_t *width) {
  if (i < 2 * HIST_SUB) { *low = (uint64_t)i; *width = 1; return; }
  int e = i / HIST_SUB + 5;
  uint64_t m = (uint64_t)(i % HIST_SUB + HIST_SUB);
  *low = m << (e - 6);
  *width = 1ull << (e - 6);
}

static inline void hist_record(struct histogram *h, uint64_t v) {
  h->counts[hist_index(v)]++;
  h->count++;
  h->sum += v;
  if (v > h->max) h->max = v;
}

// The value at quantile q (0 < q <= 1): the middle of its bucket, never above max.
static inline double hist_quantile(const struct histogram *h, double q) {
  if (h->count == 0) return 0;
  uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      uint64_t low, width;
      hist_bounds(i, &low, &width);
      double mid = width == 1 ? (double)low : (double)low + (double)(width - 1) / 2.0;
      return mid > (double)h->max ? (double)h->max : mid;
    }
  }
  return (double)h->max;
}
#endif
