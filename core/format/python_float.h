/* Python's str(float): the shortest decimal text that reads back as the
 * same double.  Used for kohya's metadata strings and for every real the
 * service prints in JSON. */
#ifndef MS_PYTHON_FLOAT_H
#define MS_PYTHON_FLOAT_H

#include <stddef.h>

/* The shortest digits that round-trip, always with a ".0" or an exponent
 * ("0.9", "4.0", "1e-05", "1e+16", "inf").  size >= 32. */
void ms_python_float_str(double value, char *text, size_t size);

#endif
