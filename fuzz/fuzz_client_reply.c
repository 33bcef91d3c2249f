/* Bytes from a daemon fed to the client library: message framing, reply
 * matching by serial and procedure, error payloads, keepalive, lifecycle
 * events and console stream data. A hostile or broken daemon must make
 * calls fail, never crash the client or make it read past a message.
 *
 * Input: the whole byte stream the daemon sends, written into one end of a
 * socket pair by a thread while the library reads the other end and makes
 * a fixed series of calls whose replies carry strings, arrays and unions.
 * The calls use serials 0, 1, 2... as a fresh connection would. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/conn_priv.h"

#ifdef FUZZ_RENAME
#define LLVMFuzzerTestOneInput fuzz_client_reply_one
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
    int fd;
    const uint8_t *data;
    size_t len;
};

static void *daemon_side(void *arg)
{
    struct feed *f = arg;
    const uint8_t *p = f->data;
    size_t n = f->len;
    while (n > 0) {
        ssize_t k = send(f->fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        p += k;
        n -= (size_t)k;
    }
    shutdown(f->fd, SHUT_WR);
    /* drain the calls so the client never blocks on a full socket */
    char buf[4096];
    while (recv(f->fd, buf, sizeof buf, 0) > 0)
        ;
    return NULL;
}

static void on_lifecycle(void *opaque, const remote_nonnull_domain *dom, int event, int detail)
{
    (void)event; (void)detail;
    /* the decoder hands over a complete domain */
    if (!dom->name || strlen(dom->name) > (size_t)-1 / 2)
        abort();
    (*(unsigned *)opaque)++;
}

/* One call and the check that a failure says why. */
#define CALL(proc, xret, ret)                                                         \
    do {                                                                              \
        memset(&(ret), 0, sizeof(ret));                                               \
        struct err e = { 0 };                                                         \
        int r = client_call(c, (proc), NULL, NULL, (xdrproc_t)(xret), &(ret), &e);    \
        if (r < 0 && !e.msg[0])                                                       \
            abort();                                                                  \
        if (r == 0)                                                                   \
            client_free_ret((xdrproc_t)(xret), &(ret));                               \
    } while (0)

static void run_calls(struct client_conn *c)
{
    remote_connect_list_all_domains_ret list;
    remote_domain_get_xml_desc_ret xml;
    remote_node_get_info_ret info;
    remote_domain_lookup_by_name_ret look;
    remote_domain_list_all_snapshots_ret snaps;
    remote_domain_get_security_label_ret label;
    remote_auth_list_ret auth;
    remote_domain_get_messages_ret msgs;
    CALL(CLIENT_PROC_CONNECT_LIST_ALL_DOMAINS, xdr_remote_connect_list_all_domains_ret, list);
    CALL(CLIENT_PROC_DOMAIN_GET_XML_DESC, xdr_remote_domain_get_xml_desc_ret, xml);
    CALL(CLIENT_PROC_NODE_GET_INFO, xdr_remote_node_get_info_ret, info);
    CALL(CLIENT_PROC_DOMAIN_LOOKUP_BY_NAME, xdr_remote_domain_lookup_by_name_ret, look);
    CALL(CLIENT_PROC_DOMAIN_LIST_ALL_SNAPSHOTS, xdr_remote_domain_list_all_snapshots_ret, snaps);
    CALL(CLIENT_PROC_DOMAIN_GET_SECURITY_LABEL, xdr_remote_domain_get_security_label_ret, label);
    CALL(CLIENT_PROC_AUTH_LIST, xdr_remote_auth_list_ret, auth);
    CALL(CLIENT_PROC_DOMAIN_GET_MESSAGES, xdr_remote_domain_get_messages_ret, msgs);
    struct err e = { 0 };
    if (client_call(c, CLIENT_PROC_DOMAIN_CREATE, NULL, NULL, NULL, NULL, &e) < 0 && !e.msg[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    struct client_conn *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->fd = sv[0];
    rpc_reader_init(&c->in);
    unsigned events = 0;
    c->lifecycle_cb = on_lifecycle;
    c->lifecycle_opaque = &events;
    c->lifecycle_id = 1;
    /* console data for the serial the first call uses */
    c->stream.open = true;
    c->stream.proc = CLIENT_PROC_CONNECT_LIST_ALL_DOMAINS;
    c->stream.serial = 0;

    struct feed f = { sv[1], data, size };
    pthread_t t;
    if (pthread_create(&t, NULL, daemon_side, &f) != 0)
        abort();
    run_calls(c);
    if (c->stream.len > CLIENT_STREAM_QUEUE_MAX || c->stream.len > c->stream.cap)
        abort();
    /* the daemon thread drains until our end closes */
    shutdown(sv[0], SHUT_RDWR);
    pthread_join(t, NULL);
    close(sv[1]);
    conn_free(c);
    return 0;
}
