// 8x8 2-D DCT-II of BLOCKS image blocks, row pass then column pass, with a cosine table built on chip.
#include <cmath>
#define BLOCKS 2
#define NB 8

void dct8(const float in[BLOCKS * NB * NB], float out[BLOCKS * NB * NB]) {
#pragma HLS INTERFACE mode=m_axi port=in offset=slave bundle=gmem0 depth=128
#pragma HLS INTERFACE mode=m_axi port=out offset=slave bundle=gmem1 depth=128
#pragma HLS INTERFACE mode=s_axilite port=return
  float cosv[NB][NB];
  float blk[NB][NB];
  float tmp[NB][NB];
#pragma HLS ARRAY_PARTITION variable=cosv type=complete dim=2
#pragma HLS ARRAY_PARTITION variable=blk type=complete dim=2
#pragma HLS ARRAY_PARTITION variable=tmp type=complete dim=1
  for (int u = 0; u < NB; u++) {
    for (int x = 0; x < NB; x++) {
#pragma HLS PIPELINE II=1
      float scale = 0.5f;
      if (u == 0) scale = 0.35355339f;
      cosv[u][x] = scale * cosf((2 * x + 1) * u * 3.14159265f / 16.0f);
    }
  }
  for (int b = 0; b < BLOCKS; b++) {
    for (int i = 0; i < NB; i++) {
      for (int j = 0; j < NB; j++) {
#pragma HLS PIPELINE II=1
        blk[i][j] = in[(b * NB + i) * NB + j];
      }
    }
    for (int i = 0; i < NB; i++) {
      for (int u = 0; u < NB; u++) {
#pragma HLS PIPELINE II=1
        float acc = 0.0f;
        for (int x = 0; x < NB; x++) {
          acc += blk[i][x] * cosv[u][x];
        }
        tmp[i][u] = acc;
      }
    }
    for (int v = 0; v < NB; v++) {
      for (int u = 0; u < NB; u++) {
#pragma HLS PIPELINE II=1
        float acc = 0.0f;
        for (int y = 0; y < NB; y++) {
          acc += tmp[y][u] * cosv[v][y];
        }
        out[(b * NB + v) * NB + u] = acc;
      }
    }
  }
}
