// 2x2 max pooling with stride 2 over a C-channel feature map (C x H x W).
#define CH 4
#define H 8
#define W 8
#define PH (H / 2)
#define PW (W / 2)

void maxpool2d(const float in[CH * H * W], float out[CH * PH * PW]) {
#pragma HLS INTERFACE mode=m_axi port=in offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=m_axi port=out offset=slave bundle=gmem1 depth=64
#pragma HLS INTERFACE mode=s_axilite port=return
  float fmap[CH][H][W];
  float pooled[CH][PH][PW];
#pragma HLS ARRAY_PARTITION variable=fmap type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=pooled type=complete dim=1
  for (int c = 0; c < CH; c++) {
    for (int y = 0; y < H; y++) {
      for (int x = 0; x < W; x++) {
#pragma HLS PIPELINE II=1
        fmap[c][y][x] = in[(c * H + y) * W + x];
      }
    }
  }
  for (int py = 0; py < PH; py++) {
    for (int px = 0; px < PW; px++) {
#pragma HLS PIPELINE II=1
      for (int c = 0; c < CH; c++) {
        float m = fmap[c][2 * py][2 * px];
        float v1 = fmap[c][2 * py][2 * px + 1];
        float v2 = fmap[c][2 * py + 1][2 * px];
        float v3 = fmap[c][2 * py + 1][2 * px + 1];
        if (v1 > m) m = v1;
        if (v2 > m) m = v2;
        if (v3 > m) m = v3;
        pooled[c][py][px] = m;
      }
    }
  }
  for (int c = 0; c < CH; c++) {
    for (int py = 0; py < PH; py++) {
      for (int px = 0; px < PW; px++) {
#pragma HLS PIPELINE II=1
        out[(c * PH + py) * PW + px] = pooled[c][py][px];
      }
    }
  }
}
