// One Jacobi sweep of a 5-point stencil over an H x W grid; boundary cells are copied.
#define H 16
#define W 16

void stencil2d(const float in[H * W], float out[H * W]) {
#pragma HLS INTERFACE mode=m_axi port=in offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=m_axi port=out offset=slave bundle=gmem1 depth=256
#pragma HLS INTERFACE mode=s_axilite port=return
  float grid[H][W];
#pragma HLS ARRAY_PARTITION variable=grid type=cyclic factor=2 dim=1
  for (int i = 0; i < H; i++) {
    for (int j = 0; j < W; j++) {
#pragma HLS PIPELINE II=1
      grid[i][j] = in[i * W + j];
    }
  }
  for (int i = 0; i < H; i++) {
    for (int j = 0; j < W; j++) {
#pragma HLS PIPELINE II=1
      float v = grid[i][j];
      if (i > 0 && i < H - 1 && j > 0 && j < W - 1) {
        v = 0.2f * (grid[i][j] + grid[i - 1][j] + grid[i + 1][j] + grid[i][j - 1] + grid[i][j + 1]);
      }
      out[i * W + j] = v;
    }
  }
}
