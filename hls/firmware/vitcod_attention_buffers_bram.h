#ifndef VITCOD_ATTENTION_BUFFERS_H_
#define VITCOD_ATTENTION_BUFFERS_H_

// Storage of the streaming attention's per-image token buffers (the q/k/v copies, the gathered
// global K rows, out_buf; the score sets: vitcod_attention_scores_<impl>.h): block RAM (BRAM18K/36K): the 7-series and UltraScale+ default for large buffers.
// The conversion adds this header to a project when the plan binds the buffers (python -m
// vitcod.hls.plan: attention_storage "bram"); hls4ml includes headers sorted by name, so it comes
// before vitcod_attention_stream.h, which reads VITCOD_ATTENTION_BUFFER_IMPL (BIND_STORAGE needs
// the implementation as a literal, hence a macro rather than a config member). One storage per
// design: a second vitcod_attention_buffers_*.h stops the compile (same include guard, #error).
#ifdef VITCOD_ATTENTION_STREAM_H_
#error "vitcod_attention_buffers_bram.h must be included before vitcod_attention_stream.h"
#endif
#define VITCOD_ATTENTION_BUFFER_IMPL bram

#else
#error "two storages for the attention buffers of one design (vitcod_attention_buffers_bram.h and another)"
#endif
