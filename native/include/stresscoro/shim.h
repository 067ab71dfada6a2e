/* The C interface of every target module; cffi reads this file as its cdef.
 * Keep it plain C: no preprocessor directives, no C++. */

/* Bit i set when op code i is supported by the target (see stresscoro/schedule.py). */
int stresscoro_capabilities(void);

/* A JSON object describing the target: factories, stack size, build flags. */
const char *stresscoro_describe(void);

/* Run one encoded schedule. `shared` is the int64 area the parent also maps:
 * header words then the event log (layout in driver.hpp). Returns 0 when every
 * op ran, or a negative harness error code. */
int stresscoro_run(const int *ops, int n_ints, long long *shared, int shared_words);
