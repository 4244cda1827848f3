// One k-means step: assign each of P 2-D points to the nearest of KC centroids, then recompute the means.
#define P 64
#define KC 4
#define DIM 2

void kmeans_step(const float pts[P * DIM], float cent[KC * DIM], int assign[P]) {
#pragma HLS INTERFACE mode=m_axi port=pts offset=slave bundle=gmem0 depth=128
#pragma HLS INTERFACE mode=m_axi port=cent offset=slave bundle=gmem1 depth=8
#pragma HLS INTERFACE mode=m_axi port=assign offset=slave bundle=gmem0 depth=64
#pragma HLS INTERFACE mode=s_axilite port=return
  float c_buf[KC][DIM];
  float sums[KC][DIM];
  int counts[KC];
#pragma HLS ARRAY_PARTITION variable=c_buf type=complete dim=1
  for (int k = 0; k < KC; k++) {
    for (int d = 0; d < DIM; d++) {
#pragma HLS PIPELINE II=1
      c_buf[k][d] = cent[k * DIM + d];
      sums[k][d] = 0.0f;
    }
    counts[k] = 0;
  }
points:
  for (int p = 0; p < P; p++) {
#pragma HLS PIPELINE II=4
    float x = pts[p * DIM + 0];
    float y = pts[p * DIM + 1];
    float best = 1e30f;
    int arg = 0;
    for (int k = 0; k < KC; k++) {
      float dx = x - c_buf[k][0];
      float dy = y - c_buf[k][1];
      float dist = dx * dx + dy * dy;
      if (dist < best) {
        best = dist;
        arg = k;
      }
    }
    assign[p] = arg;
    sums[arg][0] += x;
    sums[arg][1] += y;
    counts[arg] += 1;
  }
  for (int k = 0; k < KC; k++) {
    for (int d = 0; d < DIM; d++) {
#pragma HLS PIPELINE II=1
      float mean = c_buf[k][d];
      if (counts[k] > 0) mean = sums[k][d] / counts[k];
      cent[k * DIM + d] = mean;
    }
  }
}
