// Bias add + ReLU over a BATCH x FEAT activation tile, processed 4 features per cycle.
#define BATCH 8
#define FEAT 32
#define LANES 4

void relu_bias(const float x[BATCH * FEAT], const float bias[FEAT], float y[BATCH * FEAT]) {
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=m_axi port=bias offset=slave bundle=gmem1 depth=32
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=s_axilite port=return
  float b_buf[FEAT];
  float tile[FEAT];
#pragma HLS ARRAY_PARTITION variable=b_buf type=cyclic factor=4 dim=1
#pragma HLS ARRAY_PARTITION variable=tile type=cyclic factor=4 dim=1
  for (int f = 0; f < FEAT; f++) {
#pragma HLS PIPELINE II=1
    b_buf[f] = bias[f];
  }
  for (int b = 0; b < BATCH; b++) {
    for (int f = 0; f < FEAT; f++) {
#pragma HLS PIPELINE II=1
      tile[f] = x[b * FEAT + f];
    }
    for (int f = 0; f < FEAT; f += LANES) {
#pragma HLS PIPELINE II=1
      for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
        float v = tile[f + l] + b_buf[f + l];
        tile[f + l] = v > 0.0f ? v : 0.0f;
      }
    }
    for (int f = 0; f < FEAT; f++) {
#pragma HLS PIPELINE II=1
      y[b * FEAT + f] = tile[f];
    }
  }
}
