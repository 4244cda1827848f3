// INT8 GEMM with int32 accumulation and per-column requantization (multiply, shift, clamp) to int8.
#include <cstdint>
#define N 8
#define K 16
#define M 8
// tb-fill: mult 1 255
// tb: shift=12

void qgemm(const int8_t A[N * K], const int8_t B[K * M], const int32_t mult[M], int8_t C[N * M], int shift) {
#pragma HLS INTERFACE mode=m_axi port=A offset=slave bundle=gmem0 depth=128
#pragma HLS INTERFACE mode=m_axi port=B offset=slave bundle=gmem1 depth=128
#pragma HLS INTERFACE mode=m_axi port=mult offset=slave bundle=gmem1 depth=8
#pragma HLS INTERFACE mode=m_axi port=C offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=s_axilite port=shift
#pragma HLS INTERFACE mode=s_axilite port=return
  int8_t a_buf[N][K];
  int8_t b_buf[K][M];
  int32_t m_buf[M];
#pragma HLS ARRAY_PARTITION variable=a_buf type=complete dim=2
#pragma HLS ARRAY_PARTITION variable=b_buf type=complete dim=1
  for (int i = 0; i < N; i++) {
    for (int k = 0; k < K; k++) {
#pragma HLS PIPELINE II=1
      a_buf[i][k] = A[i * K + k];
    }
  }
  for (int k = 0; k < K; k++) {
    for (int j = 0; j < M; j++) {
#pragma HLS PIPELINE II=1
      b_buf[k][j] = B[k * M + j];
    }
  }
  for (int j = 0; j < M; j++) {
#pragma HLS PIPELINE II=1
    m_buf[j] = mult[j];
  }
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < M; j++) {
#pragma HLS PIPELINE II=1
      int32_t acc = 0;
      for (int k = 0; k < K; k++) {
        acc += (int32_t)a_buf[i][k] * (int32_t)b_buf[k][j];
      }
      int64_t scaled = ((int64_t)acc * m_buf[j]) >> shift;
      if (scaled > 127) scaled = 127;
      if (scaled < -128) scaled = -128;
      C[i * M + j] = (int8_t)scaled;
    }
  }
}
