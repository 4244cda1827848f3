// FIR filter with TAPS coefficients over a block of SAMPLES inputs, using a shift register.
#define TAPS 16
#define SAMPLES 64

void fir(const float x[SAMPLES], const float coef[TAPS], float y[SAMPLES]) {
#pragma HLS INTERFACE mode=m_axi port=x offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=m_axi port=coef offset=slave bundle=gmem1 depth=16
#pragma HLS INTERFACE mode=m_axi port=y offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=s_axilite port=return
  float c_buf[TAPS];
  float shift_reg[TAPS];
#pragma HLS ARRAY_PARTITION variable=c_buf type=complete dim=1
#pragma HLS ARRAY_PARTITION variable=shift_reg type=complete dim=1
  for (int t = 0; t < TAPS; t++) {
#pragma HLS PIPELINE II=1
    c_buf[t] = coef[t];
    shift_reg[t] = 0.0f;
  }
samples:
  for (int n = 0; n < SAMPLES; n++) {
#pragma HLS PIPELINE II=1
    for (int t = TAPS - 1; t > 0; t--) {
      shift_reg[t] = shift_reg[t - 1];
    }
    shift_reg[0] = x[n];
    float acc = 0.0f;
    for (int t = 0; t < TAPS; t++) {
      acc += shift_reg[t] * c_buf[t];
    }
    y[n] = acc;
  }
}
