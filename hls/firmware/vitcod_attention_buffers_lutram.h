#ifndef VITCOD_ATTENTION_BUFFERS_H_
#define VITCOD_ATTENTION_BUFFERS_H_

// Storage of the streaming attention's per-image token buffers (the q/k/v copies, the gathered
// global K rows, out_buf; the score sets: vitcod_attention_scores_<impl>.h): distributed RAM (LUTs, 64 x 1 bits per LUT): for boards whose block RAM is spent first.
// The conversion adds this header to a project when the plan binds the buffers (python -m
// vitcod.hls.plan: attention_storage "lutram"); hls4ml includes headers sorted by name, so it comes
// before vitcod_attention_stream.h, which reads VITCOD_ATTENTION_BUFFER_IMPL (BIND_STORAGE needs
// the implementation as a literal, hence a macro rather than a config member). One storage per
// design: a second vitcod_attention_buffers_*.h stops the compile (same include guard, #error).
#ifdef VITCOD_ATTENTION_STREAM_H_
#error "vitcod_attention_buffers_lutram.h must be included before vitcod_attention_stream.h"
#endif
#define VITCOD_ATTENTION_BUFFER_IMPL lutram

#else
#error "two storages for the attention buffers of one design (vitcod_attention_buffers_lutram.h and another)"
#endif
