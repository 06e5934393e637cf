/* dpdk-app/net.c — the frame-level protocol of ringkvd: ARP, ICMP echo, IPv4, UDP.
 *
 * Invariant: no byte of a frame is read before the frame is known to be long enough to hold
 * it, and every frame that is not a well-formed IPv4/UDP datagram to our address and port is
 * either answered (ARP request for our IP, ICMP echo to it) or dropped with exactly one drop
 * counter bumped. It never trusts a length field it has not checked against the frame, never
 * answers for an address other than ours, never passes on a frame from a broadcast,
 * multicast or martian source (src_refused), and never allocates (answers reuse the frame).
 * A datagram's peer starts with the reply budget of an unproven address (node.h AMP_*). */
#include <string.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "net.h"

static enum net_verdict net_arp(struct worker *w, struct rte_mbuf *m, uint32_t flen)
{
	const struct net_self *self = &w->node->self;
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_arp_hdr *ah = (struct rte_arp_hdr *)(eh + 1);

	if (flen < RTE_ETHER_HDR_LEN + sizeof(*ah) ||
	    ah->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    ah->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    ah->arp_hlen != RTE_ETHER_ADDR_LEN || ah->arp_plen != 4 ||
	    ah->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) ||
	    ah->arp_data.arp_tip != self->ip) {
		CNT_INC(w, arp_ignored);
		return NET_DROP;
	}
	/* Turn the request into the reply in place. */
	struct rte_ether_addr sha = ah->arp_data.arp_sha;
	uint32_t sip = ah->arp_data.arp_sip;
	ah->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	ah->arp_data.arp_tha = sha;
	ah->arp_data.arp_tip = sip;
	ah->arp_data.arp_sha = self->mac;
	ah->arp_data.arp_sip = self->ip;
	eh->dst_addr = sha;
	eh->src_addr = self->mac;
	CNT_INC(w, arp_replies);
	return NET_REPLY;
}

static enum net_verdict net_icmp(struct worker *w, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
				 uint32_t hl, uint32_t iplen)
{
	struct rte_icmp_hdr *ic = (struct rte_icmp_hdr *)((uint8_t *)ip + hl);
	uint32_t ilen = iplen - hl;

	if (ilen < sizeof(*ic) || ic->icmp_type != RTE_IP_ICMP_ECHO_REQUEST ||
	    ic->icmp_code != 0 || rte_raw_cksum(ic, ilen) != 0xffff) {
		CNT_INC(w, icmp_ignored);
		return NET_DROP;
	}
	ic->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	ic->icmp_cksum = 0;
	ic->icmp_cksum = (uint16_t)~rte_raw_cksum(ic, ilen);

	uint32_t a = ip->src_addr;
	ip->src_addr = ip->dst_addr;
	ip->dst_addr = a;
	ip->time_to_live = 64;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = (uint16_t)~rte_raw_cksum(ip, hl);

	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	eh->dst_addr = eh->src_addr;
	eh->src_addr = w->node->self.mac;
	/* Trim Ethernet padding so the echo is exactly as long as the request. */
	rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) - RTE_ETHER_HDR_LEN - iplen));
	CNT_INC(w, icmp_echo);
	return NET_REPLY;
}

/* Is the UDP checksum of a datagram acceptable? The PMD's verdict when it gives one (GOOD,
 * BAD, or NONE: "integrity verified, checksum not in the packet"); else verified here over
 * the pseudo-header, header and payload. Accepted without a sum to check: 0 (no checksum,
 * legal over IPv4), and a partial checksum, the pseudo-header sum alone, which is what a
 * frame sent by a kernel socket on this host carries when it reaches us over veth through
 * net_af_packet with checksum offload pending: such a frame never crossed a wire, and a
 * corrupted one matches that value with chance 2^-16. Anything else is dropped (counted):
 * a corrupted payload is never stored (issue 9 item 4). */
static int udp_cksum_ok(const struct rte_mbuf *m, const struct rte_ipv4_hdr *ip,
			const struct rte_udp_hdr *uh, uint32_t ulen)
{
	uint64_t f = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;

	if (f == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		return 0;
	if (f == RTE_MBUF_F_RX_L4_CKSUM_GOOD || f == RTE_MBUF_F_RX_L4_CKSUM_NONE ||
	    uh->dgram_cksum == 0)
		return 1;
	struct {
		uint32_t src, dst;
		uint8_t zero, proto;
		uint16_t len;
	} __rte_packed ph = { ip->src_addr, ip->dst_addr, 0, IPPROTO_UDP,
			      rte_cpu_to_be_16((uint16_t)ulen) };
	uint32_t phs = rte_raw_cksum(&ph, sizeof(ph));
	uint32_t sum = phs + rte_raw_cksum(uh, ulen);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff || uh->dgram_cksum == (uint16_t)phs;
}

/* Sources we never answer (issue 9 item 1): an answer would go to many hosts or to none
 * that asked. Dropped and counted: the limited broadcast 255.255.255.255 and a broadcast
 * Ethernet source (drop_src_bcast); multicast 224/4 and a multicast Ethernet source
 * (drop_src_mcast); "this network" 0/8, reserved 240/4, our own address, and loopback 127/8
 * unless we serve a loopback address ourselves (drop_src_martian). With --ip ADDR/LEN the
 * subnet's directed broadcast and its network address (the old BSD broadcast) are dropped as
 * broadcast too; without a prefix they are not known here, and a reply to one would go to the
 * request's Ethernet source only, bounded by the amplification budget like any other. */
static int src_refused(struct worker *w, const struct rte_ether_hdr *eh, uint32_t src_be)
{
	const struct net_self *self = &w->node->self;
	uint32_t s = rte_be_to_cpu_32(src_be);
	uint32_t top = s >> 24;

	if (s == UINT32_MAX || rte_is_broadcast_ether_addr(&eh->src_addr) ||
	    (self->subnet_bcast && (src_be == self->subnet_bcast || src_be == self->subnet_net))) {
		CNT_INC(w, drop_src_bcast);
		return 1;
	}
	if ((top & 0xf0) == 0xe0 || rte_is_multicast_ether_addr(&eh->src_addr)) {
		CNT_INC(w, drop_src_mcast);
		return 1;
	}
	if (top == 0 || (top & 0xf0) == 0xf0 || src_be == self->ip ||
	    (top == 127 && (rte_be_to_cpu_32(self->ip) >> 24) != 127)) {
		CNT_INC(w, drop_src_martian);
		return 1;
	}
	return 0;
}

enum net_verdict net_classify(struct worker *w, struct rte_mbuf *m, struct net_peer *peer,
			      const uint8_t **payload, uint32_t *len)
{
	const struct net_self *self = &w->node->self;
	uint32_t flen = rte_pktmbuf_pkt_len(m);

	if (!rte_pktmbuf_is_contiguous(m)) {
		CNT_INC(w, drop_nonlinear);
		return NET_DROP;
	}
	if (flen < RTE_ETHER_HDR_LEN) {
		CNT_INC(w, drop_ethertype);
		return NET_DROP;
	}
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
		return net_arp(w, m, flen);
	if (eh->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
		CNT_INC(w, drop_ethertype);
		return NET_DROP;
	}

	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
	uint32_t room = flen - RTE_ETHER_HDR_LEN;
	if (room < sizeof(*ip) || (ip->version_ihl >> 4) != 4) {
		CNT_INC(w, drop_ip_header);
		return NET_DROP;
	}
	uint32_t hl = (uint32_t)(ip->version_ihl & 0xf) * 4u;
	uint32_t iplen = rte_be_to_cpu_16(ip->total_length);
	if (hl < sizeof(*ip) || hl > room || iplen < hl) {
		CNT_INC(w, drop_ip_header);
		return NET_DROP;
	}
	if (iplen > room) {
		/* Shorter than announced: cut by the capture (a datagram larger than the frame
		 * size of net_af_packet's ring arrives so) or by the wire. */
		CNT_INC(w, drop_ip_truncated);
		return NET_DROP;
	}
	if (ip->dst_addr != self->ip) {
		CNT_INC(w, drop_ip_not_us);
		return NET_DROP;
	}
	if (rte_raw_cksum(ip, hl) != 0xffff) {
		CNT_INC(w, drop_ip_checksum);
		return NET_DROP;
	}
	if (src_refused(w, eh, ip->src_addr))
		return NET_DROP;
	uint16_t frag = rte_be_to_cpu_16(ip->fragment_offset);
	if (frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
		/* One count per datagram (its first fragment); the rest apart. */
		if (frag & RTE_IPV4_HDR_OFFSET_MASK)
			CNT_INC(w, drop_ip_fragment_tail);
		else
			CNT_INC(w, drop_ip_fragment);
		return NET_DROP;
	}
	if (ip->next_proto_id == IPPROTO_ICMP)
		return net_icmp(w, m, ip, hl, iplen);
	if (ip->next_proto_id != IPPROTO_UDP) {
		CNT_INC(w, drop_ip_proto);
		return NET_DROP;
	}

	struct rte_udp_hdr *uh = (struct rte_udp_hdr *)((uint8_t *)ip + hl);
	uint32_t ulen_max = iplen - hl;
	if (ulen_max < sizeof(*uh)) {
		CNT_INC(w, drop_udp_length);
		return NET_DROP;
	}
	uint32_t ulen = rte_be_to_cpu_16(uh->dgram_len);
	if (ulen < sizeof(*uh) || ulen > ulen_max) {
		CNT_INC(w, drop_udp_length);
		return NET_DROP;
	}
	if (uh->dst_port != self->port_be) {
		CNT_INC(w, drop_udp_port);
		return NET_DROP;
	}
	if (!udp_cksum_ok(m, ip, uh, ulen)) {
		CNT_INC(w, drop_udp_checksum);
		return NET_DROP;
	}
	m->l2_len = RTE_ETHER_HDR_LEN;
	m->l3_len = hl;
	peer->mac = eh->src_addr;
	peer->ip = ip->src_addr;
	peer->port_be = uh->src_port;
	*payload = (const uint8_t *)(uh + 1);
	*len = ulen - (uint32_t)sizeof(*uh);
	peer->budget = amp_budget(*len); /* unproven until the payload says otherwise */
	return NET_UDP;
}

void net_udp_locate(const struct rte_mbuf *m, struct net_peer *peer,
		    const uint8_t **payload, uint32_t *len)
{
	const struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eh + 1);
	const struct rte_udp_hdr *uh =
		(const struct rte_udp_hdr *)((const uint8_t *)ip + m->l3_len);

	peer->mac = eh->src_addr;
	peer->ip = ip->src_addr;
	peer->port_be = uh->src_port;
	*payload = (const uint8_t *)(uh + 1);
	*len = rte_be_to_cpu_16(uh->dgram_len) - (uint32_t)sizeof(*uh);
	peer->budget = amp_budget(*len);
}

void net_udp_build(struct worker *w, struct rte_mbuf *m, const struct net_peer *peer,
		   uint32_t payload_len)
{
	const struct net_self *self = &w->node->self;
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
	struct rte_udp_hdr *uh = (struct rte_udp_hdr *)(ip + 1);

	eh->dst_addr = peer->mac;
	eh->src_addr = self->mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);

	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(20u + 8u + payload_len));
	ip->packet_id = rte_cpu_to_be_16(w->ip_id++);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = self->ip;
	ip->dst_addr = peer->ip;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);

	uh->src_port = self->port_be;
	uh->dst_port = peer->port_be;
	uh->dgram_len = rte_cpu_to_be_16((uint16_t)(8u + payload_len));
	uh->dgram_cksum = 0;

	m->data_len = (uint16_t)(NET_HDRS + payload_len);
	m->pkt_len = m->data_len;
	m->nb_segs = 1;
	m->next = NULL;
}
