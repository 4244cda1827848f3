// Cascade of SECTIONS biquad IIR sections (direct form I) over a block of samples.
#define SECTIONS 2
#define SAMPLES 64

void iir_biquad(const float x[SAMPLES], const float coef[SECTIONS * 5], float y[SAMPLES]) {
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=m_axi port=coef offset=slave bundle=gmem1 depth=10
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=s_axilite port=return
  float c[SECTIONS][5];
  float xs[SECTIONS][2];
  float ys[SECTIONS][2];
#pragma HLS ARRAY_PARTITION variable=c type=complete dim=0
#pragma HLS ARRAY_PARTITION variable=xs type=complete dim=0
#pragma HLS ARRAY_PARTITION variable=ys type=complete dim=0
  for (int s = 0; s < SECTIONS; s++) {
    for (int j = 0; j < 5; j++) {
#pragma HLS PIPELINE II=1
      c[s][j] = coef[s * 5 + j] * 0.25f;
    }
    xs[s][0] = 0.0f;
    xs[s][1] = 0.0f;
    ys[s][0] = 0.0f;
    ys[s][1] = 0.0f;
  }
  for (int n = 0; n < SAMPLES; n++) {
#pragma HLS PIPELINE II=4
    float v = x[n];
    for (int s = 0; s < SECTIONS; s++) {
      float out = c[s][0] * v + c[s][1] * xs[s][0] + c[s][2] * xs[s][1] - c[s][3] * ys[s][0] -
                  c[s][4] * ys[s][1];
      xs[s][1] = xs[s][0];
      xs[s][0] = v;
      ys[s][1] = ys[s][0];
      ys[s][0] = out;
      v = out;
    }
    y[n] = v;
  }
}
