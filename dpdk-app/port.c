/* dpdk-app/port.c — the one DPDK port of ringkvd: frame pool, queues, RSS, start and stop.
 *
 * port_setup() gives each worker w RX queue w and TX queue w (the PMD must offer nworkers
 * queue pairs: net_af_packet takes qpairs=N) and turns RSS on over IP/UDP where the PMD can
 * hash, so one flow always lands on one queue. It runs before any worker starts and
 * port_close() after they all stopped; nothing here runs on the worker loop. */
#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "node.h"

#define RX_DESC 1024u
#define TX_DESC 1024u
#define POOL_CACHE 256u

int port_setup(struct node *n)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	uint16_t pid = n->port_id, nq = (uint16_t)n->nworkers;
	uint16_t rxd = RX_DESC, txd = TX_DESC;
	int socket = rte_eth_dev_socket_id(pid);
	int rc;

	if (socket < 0)
		socket = (int)rte_socket_id();
	rc = rte_eth_dev_info_get(pid, &info);
	if (rc) {
		fprintf(stderr, "ringkvd: port %u: cannot get device info: %s\n", pid, strerror(-rc));
		return rc;
	}
	if (info.max_rx_queues < nq || info.max_tx_queues < nq) {
		fprintf(stderr, "ringkvd: port %u (%s) has %u RX / %u TX queues, %u workers need "
			"%u of each (net_af_packet: add qpairs=%u; or give fewer lcores)\n",
			pid, info.driver_name, info.max_rx_queues, info.max_tx_queues, nq, nq, nq);
		return -EINVAL;
	}

	memset(&conf, 0, sizeof(conf));
	if (nq > 1 && info.flow_type_rss_offloads) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
	}
	rc = rte_eth_dev_configure(pid, nq, nq, &conf);
	if (rc) {
		fprintf(stderr, "ringkvd: port %u: configure with %u queue pairs: %s\n", pid, nq,
			strerror(-rc));
		return rc;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &rxd, &txd);
	if (rc)
		return rc;

	/* Enough frames for every ring that can hold one at once, plus per-lcore caches. */
	unsigned nbufs = nq * (rxd + txd + RKVD_INBOX_SIZE + RKVD_TXB_MAX + 2 * POOL_CACHE) + 4096;
	uint32_t room = RTE_PKTMBUF_HEADROOM + RTE_MAX(n->opts.mtu + RTE_ETHER_HDR_LEN, 2048u);
	/* Each frame carries a decoded request (or segment) in its private area (node.h). */
	n->pktpool = rte_pktmbuf_pool_create("rkv_frames", nbufs, POOL_CACHE, PKT_PRIV_SIZE,
					     (uint16_t)room, socket);
	if (!n->pktpool) {
		fprintf(stderr, "ringkvd: cannot create a pool of %u frames: %s (more -m?)\n",
			nbufs, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (uint16_t q = 0; q < nq; q++) {
		rc = rte_eth_rx_queue_setup(pid, q, rxd, (unsigned)socket, NULL, n->pktpool);
		if (!rc)
			rc = rte_eth_tx_queue_setup(pid, q, txd, (unsigned)socket, NULL);
		if (rc) {
			fprintf(stderr, "ringkvd: port %u: queue %u setup: %s\n", pid, q,
				strerror(-rc));
			return rc;
		}
	}
	rc = rte_eth_dev_start(pid);
	if (rc) {
		fprintf(stderr, "ringkvd: port %u: start: %s\n", pid, strerror(-rc));
		return rc;
	}
	rte_eth_macaddr_get(pid, &n->self.mac);
	snprintf(n->port_driver, sizeof(n->port_driver), "%s", info.driver_name);
	n->nb_queues = nq;
	n->have_port = 1;
	/* Queue pairs that are point-to-point rings to one peer queue each: a reply must leave
	 * by the queue its request came by (worker.c). NICs and af_packet share one wire. */
	static const char *const paired[] = { "net_memif", "net_ring", "net_vhost",
					       "net_virtio_user" };
	for (size_t i = 0; i < RTE_DIM(paired); i++)
		if (nq > 1 && strcmp(info.driver_name, paired[i]) == 0)
			n->reply_via_rxq = 1;
	return 0;
}

void port_close(struct node *n)
{
	if (n->have_port) {
		rte_eth_dev_stop(n->port_id);
		rte_eth_dev_close(n->port_id);
		n->have_port = 0;
	}
}
