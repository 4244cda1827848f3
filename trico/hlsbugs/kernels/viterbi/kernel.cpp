// Viterbi decoding of an HMM with S states over T observations (log domain), with backtracking.
#define S 4
#define T 16
#define OBS 4
// tb-fill: obs 0 3

void viterbi(const int obs[T], const float init[S], const float trans[S * S], const float emit[S * OBS],
             int path[T]) {
#pragma HLS INTERFACE mode=m_axi port=obs offset=slave bundle=gmem0 depth=16
#pragma HLS INTERFACE mode=m_axi port=init offset=slave bundle=gmem1 depth=4
#pragma HLS INTERFACE mode=m_axi port=trans offset=slave bundle=gmem1 depth=16
#pragma HLS INTERFACE mode=m_axi port=emit offset=slave bundle=gmem1 depth=16
#pragma HLS INTERFACE mode=m_axi port=path offset=slave bundle=gmem0 depth=16
#pragma HLS INTERFACE mode=s_axilite port=return
  float tr[S][S];
  float em[S][OBS];
  float score[T][S];
  int back[T][S];
#pragma HLS ARRAY_PARTITION variable=tr type=complete dim=1
  for (int i = 0; i < S; i++) {
    for (int j = 0; j < S; j++) {
#pragma HLS PIPELINE II=1
      tr[i][j] = trans[i * S + j];
    }
  }
  for (int i = 0; i < S; i++) {
    for (int o = 0; o < OBS; o++) {
#pragma HLS PIPELINE II=1
      em[i][o] = emit[i * OBS + o];
    }
  }
  for (int s = 0; s < S; s++) {
#pragma HLS PIPELINE II=1
    score[0][s] = init[s] + em[s][obs[0]];
    back[0][s] = 0;
  }
  for (int t = 1; t < T; t++) {
    for (int s = 0; s < S; s++) {
#pragma HLS PIPELINE II=1
      float best = score[t - 1][0] + tr[0][s];
      int arg = 0;
      for (int p = 1; p < S; p++) {
        float cand = score[t - 1][p] + tr[p][s];
        if (cand > best) {
          best = cand;
          arg = p;
        }
      }
      score[t][s] = best + em[s][obs[t]];
      back[t][s] = arg;
    }
  }
  int cur = 0;
  float best_final = score[T - 1][0];
  for (int s = 1; s < S; s++) {
#pragma HLS PIPELINE II=1
    if (score[T - 1][s] > best_final) {
      best_final = score[T - 1][s];
      cur = s;
    }
  }
  for (int t = T - 1; t >= 0; t--) {
#pragma HLS PIPELINE II=1
    path[t] = cur;
    cur = back[t][cur];
  }
}
