# tests/checkpoint: SD1.5/SDXL-shaped checkpoint generator (real key names,
# real shapes at full size).  Test programs that need checkpoints add
# $(CHECKPOINT_GENERATOR) to their sources.
CHECKPOINT_GENERATOR = tests/checkpoint_generator.c tests/checkpoint_generator.h

# noinst: the merge benchmark and by-hand runs use it from a plain build.
noinst_PROGRAMS += tests/gen_checkpoint
tests_gen_checkpoint_SOURCES = tests/gen_checkpoint.c $(CHECKPOINT_GENERATOR)
tests_gen_checkpoint_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_gen_checkpoint_LDADD = $(CORE_LIBS)
