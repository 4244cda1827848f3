// Attention scores for one head: S[t][s] = (q_t . k_s) * scale, with a causal mask (s > t gets -1e9).
#define T 8
#define HD 16
// tb: scale=0.25

void attn_scores(const float q[T * HD], const float k[T * HD], float s[T * T], float scale) {
#pragma HLS INTERFACE mode=m_axi port=q offset=slave bundle=gmem0 depth=128
#pragma HLS INTERFACE mode=m_axi port=k offset=slave bundle=gmem1 depth=128
#pragma HLS INTERFACE mode=m_axi port=s offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=s_axilite port=scale
#pragma HLS INTERFACE mode=s_axilite port=return
  float q_buf[T][HD];
  float k_buf[T][HD];
#pragma HLS ARRAY_PARTITION variable=q_buf type=complete dim=2
#pragma HLS ARRAY_PARTITION variable=k_buf type=complete dim=2
  for (int t = 0; t < T; t++) {
    for (int d = 0; d < HD; d++) {
#pragma HLS PIPELINE II=1
      q_buf[t][d] = q[t * HD + d];
      k_buf[t][d] = k[t * HD + d];
    }
  }
  for (int t = 0; t < T; t++) {
    for (int j = 0; j < T; j++) {
#pragma HLS PIPELINE II=1
      float dot = 0.0f;
      for (int d = 0; d < HD; d++) {
#pragma HLS UNROLL
        dot += q_buf[t][d] * k_buf[j][d];
      }
      float masked = -1e9f;
      if (j <= t) masked = dot * scale;
      s[t * T + j] = masked;
    }
  }
}
