// GEMM: C = alpha * A x B + beta * C, A is N x K, B is K x M, all row-major.
#define N 16
#define K 16
#define M 16
// tb: alpha=1.5 beta=0.5

void gemm(const float A[N * K], const float B[K * M], float C[N * M], float alpha, float beta) {
#pragma HLS INTERFACE mode=m_axi port=A offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=m_axi port=B offset=slave bundle=gmem1 depth=256
#pragma HLS INTERFACE mode=m_axi port=C offset=slave bundle=gmem0 depth=256
#pragma HLS INTERFACE mode=s_axilite port=alpha
#pragma HLS INTERFACE mode=s_axilite port=beta
#pragma HLS INTERFACE mode=s_axilite port=return
  float a_buf[N][K];
  float b_buf[K][M];
#pragma HLS ARRAY_PARTITION variable=a_buf type=cyclic factor=8 dim=2
#pragma HLS ARRAY_PARTITION variable=b_buf type=cyclic factor=8 dim=1
load_a:
  for (int i = 0; i < N; i++) {
    for (int k = 0; k < K; k++) {
#pragma HLS PIPELINE II=1
      a_buf[i][k] = A[i * K + k];
    }
  }
load_b:
  for (int k = 0; k < K; k++) {
    for (int j = 0; j < M; j++) {
#pragma HLS PIPELINE II=1
      b_buf[k][j] = B[k * M + j];
    }
  }
compute:
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < M; j++) {
#pragma HLS PIPELINE II=1
      float acc = 0.0f;
      for (int k = 0; k < K; k++) {
#pragma HLS UNROLL
        acc += a_buf[i][k] * b_buf[k][j];
      }
      C[i * M + j] = alpha * acc + beta * C[i * M + j];
    }
  }
}
