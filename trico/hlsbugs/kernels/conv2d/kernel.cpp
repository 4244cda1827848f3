// 2-D convolution (valid padding, one channel) with a 3x3 kernel and a bias.
#define H 12
#define W 12
#define KS 3
#define OH (H - KS + 1)
#define OW (W - KS + 1)
// tb: bias=0.25

void conv2d(const float img[H * W], const float ker[KS * KS], float out[OH * OW], float bias) {
#pragma HLS INTERFACE mode=m_axi port=img offset=slave bundle=gmem0 depth=144
#pragma HLS INTERFACE mode=m_axi port=ker offset=slave bundle=gmem1 depth=9
#pragma HLS INTERFACE mode=m_axi port=out offset=slave bundle=gmem1 depth=100
#pragma HLS INTERFACE mode=s_axilite port=bias
#pragma HLS INTERFACE mode=s_axilite port=return
  float img_buf[H][W];
  float k_buf[KS][KS];
#pragma HLS ARRAY_PARTITION variable=k_buf type=complete dim=0
#pragma HLS ARRAY_PARTITION variable=img_buf type=cyclic factor=3 dim=2
  for (int i = 0; i < H; i++) {
    for (int j = 0; j < W; j++) {
#pragma HLS PIPELINE II=1
      img_buf[i][j] = img[i * W + j];
    }
  }
  for (int i = 0; i < KS; i++) {
    for (int j = 0; j < KS; j++) {
#pragma HLS PIPELINE II=1
      k_buf[i][j] = ker[i * KS + j];
    }
  }
  for (int oy = 0; oy < OH; oy++) {
    for (int ox = 0; ox < OW; ox++) {
#pragma HLS PIPELINE II=1
      float acc = bias;
      for (int ky = 0; ky < KS; ky++) {
        for (int kx = 0; kx < KS; kx++) {
          acc += img_buf[oy + ky][ox + kx] * k_buf[ky][kx];
        }
      }
      out[oy * OW + ox] = acc;
    }
  }
}
