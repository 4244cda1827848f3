// Inclusive prefix sum of LEN integers, computed in blocks of BLK with a running carry.
#define LEN 64
#define BLK 8

void prefix_sum(const int in[LEN], int out[LEN]) {
#pragma HLS INTERFACE mode=m_axi port=in offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=m_axi port=out offset=slave bundle=gmem1 depth=64
#pragma HLS INTERFACE mode=s_axilite port=return
  int buf[LEN];
#pragma HLS ARRAY_PARTITION variable=buf type=cyclic factor=8 dim=1
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    buf[i] = in[i];
  }
  int carry = 0;
blocks:
  for (int b = 0; b < LEN / BLK; b++) {
#pragma HLS PIPELINE II=1
    int run = carry;
    for (int j = 0; j < BLK; j++) {
#pragma HLS UNROLL
      run += buf[b * BLK + j];
      buf[b * BLK + j] = run;
    }
    carry = run;
  }
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    out[i] = buf[i];
  }
}
