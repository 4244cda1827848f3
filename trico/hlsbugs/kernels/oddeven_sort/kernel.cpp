// Odd-even transposition sort of LEN integers (a sorting network of LEN phases).
#define LEN 32

void oddeven_sort(const int in[LEN], int out[LEN]) {
#pragma HLS INTERFACE mode=m_axi port=in offset=slave bundle=gmem0 depth=32
#pragma HLS INTERFACE mode=m_axi port=out offset=slave bundle=gmem1 depth=32
#pragma HLS INTERFACE mode=s_axilite port=return
  int a[LEN];
#pragma HLS ARRAY_PARTITION variable=a type=complete dim=1
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    a[i] = in[i];
  }
phases:
  for (int p = 0; p < LEN; p++) {
#pragma HLS PIPELINE II=1
    int start = p & 1;
    for (int i = 0; i < LEN / 2; i++) {
      int lo = start + 2 * i;
      if (lo + 1 < LEN) {
        int x = a[lo];
        int y = a[lo + 1];
        if (x > y) {
          a[lo] = y;
          a[lo + 1] = x;
        }
      }
    }
  }
  for (int i = 0; i < LEN; i++) {
#pragma HLS PIPELINE II=1
    out[i] = a[i];
  }
}
