/*
 * hex_digit.h - the value of one hexadecimal digit, for the decoders of
 * %XX (queue envelopes, reasons, state files) and xtext (DSN) escapes.
 */
#ifndef SLUICE_HEX_DIGIT_H
#define SLUICE_HEX_DIGIT_H

/* 0..15, or -1 when c is not a hex digit (either case). */
static inline int hex_digit_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

#endif
