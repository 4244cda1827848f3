// trico HLS library: everything a generated top level includes.
#ifndef TRICO_H
#define TRICO_H

#include "trico_attention.h"
#include "trico_common.h"
#include "trico_matvec.h"
#include "trico_mlp.h"
#include "trico_norm.h"
#include "trico_rope.h"
#include "trico_softmax.h"
#include "trico_weights.h"

#endif
