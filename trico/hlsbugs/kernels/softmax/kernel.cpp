// Numerically stable softmax over a vector of length LEN.
#include <cmath>
#define LEN 64

void softmax(const float x[LEN], float y[LEN]) {
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem1 depth=64
#pragma HLS INTERFACE mode=s_axilite port=return
  float buf[LEN];
  float e[LEN];
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    buf[i] = x[i];
  }
  float max_val = buf[0];
  for (int i = 1; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    if (buf[i] > max_val) max_val = buf[i];
  }
  float sum = 0.0f;
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    e[i] = expf(buf[i] - max_val);
    sum += e[i];
  }
  float inv = 1.0f / sum;
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    y[i] = e[i] * inv;
  }
}
