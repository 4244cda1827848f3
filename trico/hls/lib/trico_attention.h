// trico HLS library: grouped-query attention of one decode step over a KV cache in external memory.
// kcache/vcache point at this layer's [HKV][MAXLEN][D] slice; the new key/value are written at pos,
// then each query head attends over positions 0..pos of its key/value head. UA lanes along head_dim.
#ifndef TRICO_ATTENTION_H
#define TRICO_ATTENTION_H

#include "trico_softmax.h"

namespace trico {

template <class Tq, class Tkv, class Ty, class Tacc, int H, int HKV, int D, int MAXLEN, int UA = 1>
void attention(const Tq q[H * D], const Tkv k_new[HKV * D], const Tkv v_new[HKV * D], Tkv *kcache,
               Tkv *vcache, int pos, Ty y[H * D]) {
    const float scale = 1.0f / std::sqrt((float)D);
store_loop:
    for (int j = 0; j < HKV * D; j++) {
#pragma HLS PIPELINE II = 1
        const int kvh = j / D, d = j % D;
        kcache[((long)kvh * MAXLEN + pos) * D + d] = k_new[j];
        vcache[((long)kvh * MAXLEN + pos) * D + d] = v_new[j];
    }
head_loop:
    for (int h = 0; h < H; h++) {
        const int kvh = h / (H / HKV);
        const Tkv *kh = kcache + (long)kvh * MAXLEN * D;
        const Tkv *vh = vcache + (long)kvh * MAXLEN * D;
        float score[MAXLEN], p[MAXLEN];
    score_loop:
        for (int t = 0; t <= pos; t++) {
#pragma HLS LOOP_TRIPCOUNT max = MAXLEN
            Tacc part[UA];
#pragma HLS ARRAY_PARTITION variable = part complete
            for (int u = 0; u < UA; u++) {
#pragma HLS UNROLL
                part[u] = 0;
            }
        dot_loop:
            for (int dd = 0; dd < D / UA; dd++) {
#pragma HLS PIPELINE II = 1
                for (int u = 0; u < UA; u++) {
#pragma HLS UNROLL
                    const int d = dd * UA + u;
                    part[u] += Tacc(q[h * D + d] * kh[(long)t * D + d]);
                }
            }
            Tacc acc = 0;
            for (int u = 0; u < UA; u++) {
#pragma HLS UNROLL
                acc += part[u];
            }
            score[t] = to_f(acc) * scale;
        }
        softmax<float, float, MAXLEN>(score, pos + 1, p);
        // Accumulate p[t] * v[t] over t into D outputs, UA of them per cycle; consecutive updates of
        // one output are D / UA cycles apart, which hides the adder latency.
        Tacc out[D];
#pragma HLS ARRAY_PARTITION variable = out cyclic factor = UA
        for (int d = 0; d < D; d++) out[d] = 0;
    value_loop:
        for (int t = 0; t <= pos; t++) {
#pragma HLS LOOP_TRIPCOUNT max = MAXLEN
            for (int dd = 0; dd < D / UA; dd++) {
#pragma HLS PIPELINE II = 1
                for (int u = 0; u < UA; u++) {
#pragma HLS UNROLL
                    const int d = dd * UA + u;
                    out[d] += Tacc(p[t] * to_f(vh[(long)t * D + d]));
                }
            }
        }
        for (int d = 0; d < D; d++) y[h * D + d] = Ty(out[d]);
    }
}

}  // namespace trico

#endif
