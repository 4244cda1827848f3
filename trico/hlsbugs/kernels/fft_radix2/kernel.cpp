// In-place radix-2 decimation-in-time FFT of FFT_N complex points (bit-reversal, then LOG2N stages).
#include <cmath>
#define FFT_N 16
#define LOG2N 4

static unsigned bit_reverse(unsigned v) {
  unsigned r = 0;
  for (int b = 0; b < LOG2N; b++) {
#pragma HLS UNROLL
    r = (r << 1) | ((v >> b) & 1u);
  }
  return r;
}

void fft_radix2(float re[FFT_N], float im[FFT_N]) {
#pragma HLS INTERFACE mode=m_axi port=re offset=slave bundle=gmem0 depth=16
#pragma HLS INTERFACE mode=m_axi port=im offset=slave bundle=gmem1 depth=16
#pragma HLS INTERFACE mode=s_axilite port=return
  float xr[FFT_N];
  float xi[FFT_N];
  for (int i = 0; i < FFT_N; i++) {
#pragma HLS PIPELINE II=1
    unsigned j = bit_reverse((unsigned)i);
    xr[j] = re[i];
    xi[j] = im[i];
  }
stages:
  for (int s = 1; s <= LOG2N; s++) {
    int m = 1 << s;
    int half = m >> 1;
    for (int k = 0; k < FFT_N / 2; k++) {
#pragma HLS PIPELINE II=2
      int grp = k / half;
      int pos = k % half;
      int top = grp * m + pos;
      int bot = top + half;
      float ang = -6.28318530718f * pos / m;
      float wr = cosf(ang);
      float wi = sinf(ang);
      float tr = wr * xr[bot] - wi * xi[bot];
      float ti = wr * xi[bot] + wi * xr[bot];
      xr[bot] = xr[top] - tr;
      xi[bot] = xi[top] - ti;
      xr[top] = xr[top] + tr;
      xi[top] = xi[top] + ti;
    }
  }
  for (int i = 0; i < FFT_N; i++) {
#pragma HLS PIPELINE II=1
    re[i] = xr[i];
    im[i] = xi[i];
  }
}
