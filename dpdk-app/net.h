/* dpdk-app/net.h — Ethernet/ARP/IPv4/ICMP/UDP for one address, on mbufs.
 *
 * net_classify() looks at one received frame and either answers it in place (ARP request for
 * our IP, ICMP echo request to it), drops it with a counted reason, or returns where the UDP
 * payload of a datagram to our port is. Every header length is checked against the frame
 * before it is read. net_udp_build() writes the Ethernet/IPv4/UDP headers of a reply. Nothing
 * here allocates or makes a syscall; mbufs passed in stay owned by the caller. */
#ifndef RKVD_NET_H
#define RKVD_NET_H

#include <stdint.h>
#include <rte_mbuf.h>

#include "node.h"

#define NET_HDRS (RTE_ETHER_HDR_LEN + 20u + 8u) /* Ethernet + IPv4 (no options) + UDP */

enum net_verdict {
	NET_DROP = 0,   /* counted; caller frees the mbuf */
	NET_REPLY,      /* mbuf rewritten into a reply; caller transmits it */
	NET_UDP,        /* datagram to our port: *peer, *payload, *len are set */
};

/* Classify frame m received by worker w. On NET_UDP, m->l2_len/l3_len are set so that
 * net_udp_locate() can find the payload again cheaply on another worker. */
enum net_verdict net_classify(struct worker *w, struct rte_mbuf *m, struct net_peer *peer,
			      const uint8_t **payload, uint32_t *len);

/* For an mbuf that net_classify() already returned NET_UDP for. */
void net_udp_locate(const struct rte_mbuf *m, struct net_peer *peer,
		    const uint8_t **payload, uint32_t *len);

/* Fill in the Ethernet, IPv4 and UDP headers of m (whose data starts with NET_HDRS bytes of
 * room followed by payload_len bytes of payload) for a datagram from us to peer, and set
 * the mbuf lengths. UDP checksum 0 (legal over IPv4). */
void net_udp_build(struct worker *w, struct rte_mbuf *m, const struct net_peer *peer,
		   uint32_t payload_len);

#endif
