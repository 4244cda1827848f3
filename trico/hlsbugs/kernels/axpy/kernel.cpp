// AXPY in a load / compute / store dataflow: y = a * x + y.
#define LEN 128
// tb: a=0.75

void axpy(const float x[LEN], float y[LEN], float a) {
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem0 depth=128
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem1 depth=128
#pragma HLS INTERFACE mode=s_axilite port=a
#pragma HLS INTERFACE mode=s_axilite port=return
  float xb[LEN];
  float yb[LEN];
  float rb[LEN];
#pragma HLS DATAFLOW
load:
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    xb[i] = x[i];
    yb[i] = y[i];
  }
compute:
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    rb[i] = a * xb[i] + yb[i];
  }
store:
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    y[i] = rb[i];
  }
}
