#ifndef VITCOD_ATTENTION_SCORES_H_
#define VITCOD_ATTENTION_SCORES_H_

// Storage of the streaming attention's score sets (s_dense / s_sparse, written by the q.k engines,
// read by the softmax and P x V walks): block RAM (BRAM18K/36K).
// As vitcod_attention_buffers_<impl>.h (the q/k/v copies and out_buf) but for the scores: the
// conversion adds it when the plan binds them (score_storage "bram"); it sorts before
// vitcod_attention_stream.h, which reads VITCOD_ATTENTION_SCORE_IMPL. One storage per design.
#ifdef VITCOD_ATTENTION_STREAM_H_
#error "vitcod_attention_scores_bram.h must be included before vitcod_attention_stream.h"
#endif
#define VITCOD_ATTENTION_SCORE_IMPL bram

#else
#error "two storages for the attention scores of one design (vitcod_attention_scores_bram.h and another)"
#endif
