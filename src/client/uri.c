/* Connection URI parsing. */
#include "client/uri.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src[0..len) into dst; '+' stays '+' as libvirt keeps it. */
static int unescape(const char *src, size_t len, char *dst, size_t n,
                    const char *what, struct err *e)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi = i + 1 < len ? hexval(src[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return err_set(e, EINVAL, "invalid %%-escape in URI %s", what);
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0')
            return err_set(e, EINVAL, "URI %s contains a NUL byte", what);
        if (o + 1 >= n)
            return err_set(e, ENAMETOOLONG, "URI %s is too long", what);
        dst[o++] = c;
    }
    dst[o] = '\0';
    return 0;
}

static int copy_part(char *dst, size_t n, const char *src, size_t len,
                     const char *what, struct err *e)
{
    if (len >= n)
        return err_set(e, ENAMETOOLONG, "URI %s is too long", what);
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

/* Splits the query: socket= is ours; every other parameter is passed on
 * to the daemon in the name, as libvirt's remote driver does. */
static int parse_query(struct client_uri *u, const char *q, char *rest,
                       size_t rest_n, struct err *e)
{
    size_t ro = 0;
    rest[0] = '\0';
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > 7 && strncmp(q, "socket=", 7) == 0) {
            int rc = unescape(q + 7, len - 7, u->socket, sizeof(u->socket),
                              "socket parameter", e);
            if (rc < 0)
                return rc;
        } else if (len > 0 && !(len == 7 && strncmp(q, "socket=", 7) == 0)) {
            if (ro + len + 2 >= rest_n)
                return err_set(e, ENAMETOOLONG, "URI query is too long");
            if (ro)
                rest[ro++] = '&';
            memcpy(rest + ro, q, len);
            ro += len;
            rest[ro] = '\0';
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return 0;
}

static int parse_scheme(struct client_uri *u, const char *s, size_t len,
                        struct err *e)
{
    const char *plus = memchr(s, '+', len);
    size_t dlen = plus ? (size_t)(plus - s) : len;
    int rc = copy_part(u->driver, sizeof(u->driver), s, dlen, "driver", e);
    if (rc < 0)
        return rc;
    if (plus) {
        rc = copy_part(u->transport, sizeof(u->transport), plus + 1,
                       len - dlen - 1, "transport", e);
        if (rc < 0)
            return rc;
    }
    if (strcmp(u->driver, "cvirt") != 0 && strcmp(u->driver, "qemu") != 0)
        return err_set(e, EPROTONOSUPPORT,
                       "unsupported URI driver '%s' (cvirt and qemu are served)",
                       u->driver);
    if (plus && strcmp(u->transport, "unix") != 0)
        return err_set(e, EPROTONOSUPPORT,
                       "unsupported URI transport '%s' (only unix is supported)",
                       u->transport);
    return 0;
}

int client_uri_parse(const char *s, struct client_uri *u, struct err *e)
{
    memset(u, 0, sizeof(*u));
    if (!s || !*s)
        return err_set(e, EINVAL, "empty connection URI");
    int rc = copy_part(u->uri, sizeof(u->uri), s, strlen(s), "", e);
    if (rc < 0)
        return rc;
    const char *sep = strstr(s, "://");
    const char *colon = strchr(s, ':');
    if (!sep || colon != sep || sep == s)
        return err_set(e, EINVAL, "malformed connection URI '%s'", s);
    rc = parse_scheme(u, s, (size_t)(sep - s), e);
    if (rc < 0)
        return rc;

    const char *auth = sep + 3;
    const char *path = auth + strcspn(auth, "/?#");
    if (path != auth)
        return err_set(e, EPROTONOSUPPORT,
                       "remote host '%.*s' in URI is not supported (local sockets only)",
                       (int)(path - auth), auth);
    const char *q = strchr(path, '?');
    size_t plen = q ? (size_t)(q - path) : strcspn(path, "#");
    rc = unescape(path, plen, u->path, sizeof(u->path), "path", e);
    if (rc < 0)
        return rc;
    if (strcmp(u->path, "/system") != 0 && strcmp(u->path, "/session") != 0)
        return err_set(e, EINVAL,
                       "unexpected URI path '%s', try %s:///system or %s:///session",
                       u->path[0] ? u->path : "", u->driver, u->driver);

    char rest[CLIENT_URI_MAX];
    rest[0] = '\0';
    if (q) {
        char query[CLIENT_URI_MAX];
        size_t qlen = strcspn(q + 1, "#");
        rc = copy_part(query, sizeof(query), q + 1, qlen, "query", e);
        if (rc < 0)
            return rc;
        rc = parse_query(u, query, rest, sizeof(rest), e);
        if (rc < 0)
            return rc;
    }
    int w = snprintf(u->name, sizeof(u->name), "%s://%.*s%s%s", u->driver,
                     (int)plen, path, rest[0] ? "?" : "", rest);
    if (w < 0 || (size_t)w >= sizeof(u->name))
        return err_set(e, ENAMETOOLONG, "connection URI is too long");
    return 0;
}

const char *client_uri_default(void)
{
    const char *env = getenv("LIBVIRT_DEFAULT_URI");
    if (env && *env)
        return env;
    env = getenv("CVIRT_DEFAULT_URI");
    if (env && *env)
        return env;
    return geteuid() == 0 ? "cvirt:///system" : "cvirt:///session";
}

int client_uri_socket(const struct client_uri *u, bool readonly,
                      char *buf, size_t n, struct err *e)
{
    int w;
    if (u->socket[0]) {
        w = snprintf(buf, n, "%s", u->socket);
    } else if (strcmp(u->path, "/system") == 0) {
        w = snprintf(buf, n, "%s", readonly ? CLIENT_SYSTEM_SOCK_RO
                                            : CLIENT_SYSTEM_SOCK);
    } else {
        const char *run = getenv("XDG_RUNTIME_DIR");
        if (run && *run) {
            w = snprintf(buf, n, "%s/cvirt/cvirt-sock", run);
        } else {
            /* No runtime directory (e.g. su without a login): libvirt
             * falls back to the user's cache directory, so do we. */
            const char *home = getenv("HOME");
            if (!home || !*home)
                return err_set(e, ENOENT,
                               "neither XDG_RUNTIME_DIR nor HOME is set for the session socket");
            w = snprintf(buf, n, "%s/.cache/cvirt/cvirt-sock", home);
        }
    }
    if (w < 0 || (size_t)w >= n)
        return err_set(e, ENAMETOOLONG, "socket path is too long");
    return 0;
}
