/* core/token.h — stateless address-validation tokens (issue 9 item 1, RFC 9000 §8 style).
 *
 * A node proves that a UDP client really receives at the address its datagrams claim by
 * handing it a token that only the node can make and that names that address: a keyed MAC of
 * (source IPv4 address, source port, time bucket) under a per-node secret. The client echoes
 * it on later requests (core/proto.h: RKV_F_TOKEN); a datagram whose token checks out comes
 * from an address that received one of our replies within the last one to two buckets, so the
 * node may answer it with more than the 3x amplification budget an unproven address gets.
 *
 * The MAC is SipHash-2-4 (Aumasson and Bernstein 2012): a PRF with a 128-bit key designed for
 * short inputs, so without the key a token for another address or bucket cannot be computed
 * from any number of observed ones (forgery chance 2^-63 per guess: one token bit carries the
 * bucket's parity). XXH3 with a secret was not chosen: it is fast but makes no such claim.
 * The token is 64 bits: (MAC & ~1) | (bucket & 1); a check recomputes one MAC, for the bucket
 * the parity bit names (the current one or the one before), so a token lives between
 * RKV_TOKEN_BUCKET_MS and twice that. Nothing is stored per client.
 *
 * Pure: no clock reads, no randomness, no allocation, no global state (the caller passes the
 * key, drawn from getrandom at node start, and its clock in ms). Integers are mixed in a fixed
 * little-endian layout, so the result does not depend on the host's byte order. */
#ifndef RKV_TOKEN_H
#define RKV_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define RKV_TOKEN_BUCKET_MS 30000u  /* a token is valid for this bucket and the next */

struct rkv_token_key {
	uint64_t k0, k1;            /* SipHash key: a per-node secret */
};

/* SipHash-2-4 of msg[0..len) under key k (the reference function; test vectors hold). */
uint64_t rkv_siphash24(const struct rkv_token_key *k, const void *msg, size_t len);

/* The token for address (ip, port) at time now_ms. ip and port are taken as given (any byte
 * order, as long as check uses the same). */
uint64_t rkv_token_make(const struct rkv_token_key *k, uint32_t ip, uint16_t port,
			uint64_t now_ms);

enum rkv_token_verdict {
	RKV_TOKEN_BAD = 0,          /* forged, for another address, or expired */
	RKV_TOKEN_CURRENT = 1,      /* made in the current bucket */
	RKV_TOKEN_PREVIOUS = 2,     /* made in the previous bucket: valid; hand out a fresh one */
};

/* Check token t for (ip, port) at now_ms: one SipHash. */
enum rkv_token_verdict rkv_token_check(const struct rkv_token_key *k, uint32_t ip,
				       uint16_t port, uint64_t now_ms, uint64_t t);

#endif
