// 16-bin histogram of 8-bit pixel values (bin = pixel >> 4), accumulated into an existing histogram.
#include <cstdint>
#define PIXELS 256
#define BINS 16
// tb-fill: hist 0 100

void histogram(const uint8_t pix[PIXELS], uint32_t hist[BINS]) {
#pragma HLS INTERFACE mode=m_axi port=pix offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=m_axi port=hist offset=slave bundle=gmem1 depth=16
#pragma HLS INTERFACE mode=s_axilite port=return
  uint32_t local_hist[BINS];
#pragma HLS ARRAY_PARTITION variable=local_hist type=complete dim=1
  for (int b = 0; b < BINS; b++) {
#pragma HLS PIPELINE II=1
    local_hist[b] = hist[b];
  }
  for (int i = 0; i < PIXELS; i++) {
#pragma HLS PIPELINE II=1
    uint8_t p = pix[i];
    unsigned bin = p >> 4;
    local_hist[bin] += 1u;
  }
  for (int b = 0; b < BINS; b++) {
#pragma HLS PIPELINE II=1
    hist[b] = local_hist[b];
  }
}
