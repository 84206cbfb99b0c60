/*
 * loadgen: a minimal closed-loop HTTP/1.1 keep-alive load generator (GET or HEAD).
 *
 * Why it exists: Debian 12's wrk 4.1.0 cannot benchmark HEAD; its response
 * parser waits for the Content-Length body that a HEAD response never sends, so
 * every connection stalls and wrk reports 0 requests. This tool does what wrk
 * does (N threads, C keep-alive connections, one request in flight per
 * connection, fixed duration) and knows that HEAD responses have no body.
 *
 *   loadgen -m HEAD -t 2 -c 32 -d 10 [-H 'Name: value']... [-n N] [-B tokens.txt] http://127.0.0.1:PORT/path
 *
 * -n: stop after N requests (across all connections) instead of at -d.
 * -B: a file of bearer tokens, one per line. Each request carries the next one as
 * `Authorization: Bearer <token>`, each token once, across all connections; the run
 * ends when they are used up (or after -n requests, or at -d).
 * With -n or -B, rps is over the time until the last response.
 *
 * Prints one JSON line: requests, seconds, rps, non2xx, errors, p50/p99 latency.
 * Only numeric IPv4 hosts (or "localhost") are accepted: it is for loopback use.
 * Build: gcc -O2 -pthread -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define HIST_BUCKETS 1000000 /* 10 us buckets, up to 10 s */
#define HIST_RES_US 10
#define MAX_ERRORS 100000

typedef struct {
  int fd;
  const char *req; /* the request being sent */
  size_t req_len;
  size_t sent;
  size_t have;
  uint64_t t_start;
  char *buf;
} conn_t;

typedef struct {
  int nconns;
  uint64_t requests;
  uint64_t non2xx;
  uint64_t errors;
  uint64_t last_us;
  int open; /* connections still running (with -n or -B they finish when no request is left) */
  uint32_t *hist;
  pthread_t tid;
} worker_t;

static struct sockaddr_in g_addr;
static char *g_req;
static size_t g_req_len;
static int g_head;
static uint64_t g_t0, g_deadline;
/* -B: one prebuilt request per token, handed out in order. g_limit: requests to send (0: until -d). */
static char **g_token_reqs;
static size_t *g_token_lens;
static size_t g_token_count, g_next, g_limit;

/* Sets the connection's next request; 0 when none is left (-n reached, or -B's tokens used up). */
static int next_request(conn_t *c) {
  size_t i = 0;
  if (g_limit > 0 && (i = __atomic_fetch_add(&g_next, 1, __ATOMIC_RELAXED)) >= g_limit) return 0;
  c->req = g_token_reqs != NULL ? g_token_reqs[i] : g_req;
  c->req_len = g_token_reqs != NULL ? g_token_lens[i] : g_req_len;
  return 1;
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int open_conn(int ep, conn_t *c) {
  c->fd = -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  c->fd = fd;
  c->sent = 0;
  c->have = 0;
  c->t_start = now_us();
  if (!next_request(c)) {
    close(fd);
    c->fd = -1;
    return 0;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
    close(fd);
    c->fd = -1;
    return -1;
  }
  return 0;
}

static void reset_conn(int ep, conn_t *c, worker_t *w) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  w->errors++;
  if (now_us() < g_deadline && w->errors < MAX_ERRORS && open_conn(ep, c) == 0 && c->fd >= 0) return;
  w->open--; /* not reopened (or no request left for it) */
}

/* Returns total response length if a complete response is in buf, 0 if more is
 * needed, -1 if unparseable. Sets *status. */
static long parse_response(const char *buf, size_t n, int *status) {
  const char *end = memmem(buf, n, "\r\n\r\n", 4);
  if (end == NULL) return n >= BUF_SIZE ? -1 : 0;
  size_t hlen = (size_t)(end - buf) + 4;
  if (n < 12 || strncmp(buf, "HTTP/1.", 7) != 0) return -1;
  *status = atoi(buf + 9);
  long clen = -1;
  int chunked = 0;
  const char *p = buf;
  while (p < end) {
    const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
    if (eol == NULL) break;
    if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) clen = atol(p + 15);
    if ((size_t)(eol - p) > 18 && strncasecmp(p, "transfer-encoding:", 18) == 0 && memmem(p, (size_t)(eol - p), "chunked", 7) != NULL) chunked = 1;
    p = eol + 2;
  }
  if (g_head || *status == 204 || *status == 304 || (*status >= 100 && *status < 200)) return (long)hlen;
  if (chunked) {
    size_t off = hlen;
    for (;;) {
      const char *eol = memmem(buf + off, n - off, "\r\n", 2);
      if (eol == NULL) return n >= BUF_SIZE ? -1 : 0;
      long sz = strtol(buf + off, NULL, 16);
      off = (size_t)(eol - buf) + 2;
      if (sz == 0) {
        if (n - off < 2) return 0;
        return (long)(off + 2); /* no trailers expected */
      }
      if (n - off < (size_t)sz + 2) return n >= BUF_SIZE ? -1 : 0;
      off += (size_t)sz + 2;
    }
  }
  if (clen < 0) return -1; /* read-until-close bodies are not supported */
  if (hlen + (size_t)clen > BUF_SIZE) return -1;
  return n >= hlen + (size_t)clen ? (long)(hlen + (size_t)clen) : 0;
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  int ep = epoll_create1(0);
  conn_t *conns = calloc((size_t)w->nconns, sizeof(conn_t));
  struct epoll_event evs[256];
  for (int i = 0; i < w->nconns; i++) {
    conns[i].buf = malloc(BUF_SIZE);
    if (open_conn(ep, &conns[i]) < 0) w->errors++;
    if (conns[i].fd >= 0) w->open++;
  }
  while (w->open > 0 && now_us() < g_deadline && w->errors < MAX_ERRORS) {
    int left_ms = (int)((g_deadline - now_us()) / 1000) + 1;
    int n = epoll_wait(ep, evs, 256, left_ms < 100 ? left_ms : 100);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->fd < 0) continue;
      if (evs[i].events & (EPOLLERR | EPOLLHUP) && !(evs[i].events & EPOLLIN)) {
        reset_conn(ep, c, w);
        continue;
      }
      if ((evs[i].events & EPOLLOUT) && c->sent < c->req_len) {
        ssize_t k = write(c->fd, c->req + c->sent, c->req_len - c->sent);
        if (k < 0 && errno != EAGAIN) {
          reset_conn(ep, c, w);
          continue;
        }
        if (k > 0) c->sent += (size_t)k;
        if (c->sent == c->req_len) {
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      if (evs[i].events & EPOLLIN) {
        ssize_t k = read(c->fd, c->buf + c->have, BUF_SIZE - c->have);
        if (k <= 0) {
          if (k < 0 && errno == EAGAIN) continue;
          reset_conn(ep, c, w);
          continue;
        }
        c->have += (size_t)k;
        int status = 0;
        long len = parse_response(c->buf, c->have, &status);
        if (len < 0) {
          reset_conn(ep, c, w);
          continue;
        }
        if (len == 0) continue;
        uint64_t t = now_us();
        if (t < g_deadline) {
          w->requests++;
          if (t > w->last_us) w->last_us = t;
          if (status < 200 || status > 299) w->non2xx++;
          uint64_t b = (t - c->t_start) / HIST_RES_US;
          w->hist[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
        }
        if ((size_t)len < c->have) { /* unexpected extra bytes: treat as a protocol error */
          reset_conn(ep, c, w);
          continue;
        }
        c->have = 0;
        c->sent = 0;
        c->t_start = t;
        if (!next_request(c)) { /* no request left: this connection is done */
          epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
          close(c->fd);
          c->fd = -1;
          if (--w->open == 0) break;
          continue;
        }
        ssize_t s = write(c->fd, c->req, c->req_len);
        if (s > 0) c->sent = (size_t)s;
        if (s < 0 && errno != EAGAIN) {
          reset_conn(ep, c, w);
          continue;
        }
        if (c->sent < c->req_len) {
          struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
    }
  }
  for (int i = 0; i < w->nconns; i++) {
    if (conns[i].fd >= 0) close(conns[i].fd);
    free(conns[i].buf);
  }
  free(conns);
  close(ep);
  return NULL;
}

static double percentile(uint32_t *hist, uint64_t total, double q) {
  if (total == 0) return 0;
  uint64_t want = (uint64_t)(q * (double)total), acc = 0;
  for (int i = 0; i < HIST_BUCKETS; i++) {
    acc += hist[i];
    if (acc > want) return (double)i * HIST_RES_US + HIST_RES_US / 2.0;
  }
  return (double)HIST_BUCKETS * HIST_RES_US;
}

/* Reads -B's file and prebuilds one request per token (so sending costs the same as without -B). */
static int load_tokens(const char *file, const char *method, const char *path, const char *host, int port, const char *headers) {
  FILE *f = fopen(file, "r");
  if (f == NULL) {
    perror(file);
    return -1;
  }
  size_t cap = 1024;
  g_token_reqs = malloc(cap * sizeof(char *));
  g_token_lens = malloc(cap * sizeof(size_t));
  char *line = NULL;
  size_t n = 0;
  ssize_t len;
  while ((len = getline(&line, &n, f)) > 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (len == 0) continue;
    if (g_token_count == cap) {
      cap *= 2;
      g_token_reqs = realloc(g_token_reqs, cap * sizeof(char *));
      g_token_lens = realloc(g_token_lens, cap * sizeof(size_t));
    }
    size_t size = (size_t)len + strlen(headers) + strlen(path) + 256;
    char *req = malloc(size);
    g_token_lens[g_token_count] = (size_t)snprintf(req, size, "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: berth-bench-loadgen\r\n%sAuthorization: Bearer %s\r\n\r\n", method, path, host, port, headers, line);
    g_token_reqs[g_token_count++] = req;
  }
  free(line);
  fclose(f);
  if (g_token_count == 0) {
    fprintf(stderr, "loadgen: no tokens in %s\n", file);
    return -1;
  }
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: loadgen -m GET|HEAD -t threads -c connections -d seconds [-H 'K: V']... [-n requests] [-B tokens-file] http://127.0.0.1:PORT/path\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *method = "GET";
  int threads = 2, nconn = 32;
  double secs = 10;
  char headers[8192] = "";
  const char *tokens = NULL;
  long limit = 0;
  int opt;
  while ((opt = getopt(argc, argv, "m:t:c:d:H:B:n:")) != -1) {
    switch (opt) {
      case 'm': method = optarg; break;
      case 't': threads = atoi(optarg); break;
      case 'c': nconn = atoi(optarg); break;
      case 'd': secs = atof(optarg); break;
      case 'B': tokens = optarg; break;
      case 'n': limit = atol(optarg); break;
      case 'H':
        if (strlen(headers) + strlen(optarg) + 3 >= sizeof headers) usage();
        strcat(headers, optarg);
        strcat(headers, "\r\n");
        break;
      default: usage();
    }
  }
  if (optind != argc - 1 || limit < 0 || threads < 1 || nconn < threads || secs <= 0 || secs > 600) usage();
  const char *url = argv[optind];
  if (strncmp(url, "http://", 7) != 0) usage();
  char host[256];
  const char *hp = url + 7;
  const char *slash = strchr(hp, '/');
  const char *path = slash ? slash : "/";
  size_t hl = slash ? (size_t)(slash - hp) : strlen(hp);
  if (hl >= sizeof host) usage();
  memcpy(host, hp, hl);
  host[hl] = 0;
  char *colon = strrchr(host, ':');
  int port = 80;
  if (colon) {
    *colon = 0;
    port = atoi(colon + 1);
  }
  const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
  memset(&g_addr, 0, sizeof g_addr);
  g_addr.sin_family = AF_INET;
  g_addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, ip, &g_addr.sin_addr) != 1) {
    fprintf(stderr, "loadgen: host must be a numeric IPv4 address: %s\n", host);
    return 2;
  }
  g_head = strcmp(method, "HEAD") == 0;
  g_req = malloc(16384);
  g_req_len = (size_t)snprintf(g_req, 16384, "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: berth-bench-loadgen\r\n%s\r\n", method, path, host, port, headers);
  if (tokens != NULL && load_tokens(tokens, method, path, host, port, headers) != 0) return 2;
  g_limit = (size_t)limit;
  if (tokens != NULL && (g_limit == 0 || g_limit > g_token_count)) g_limit = g_token_count;

  worker_t *ws = calloc((size_t)threads, sizeof(worker_t));
  g_t0 = now_us();
  g_deadline = g_t0 + (uint64_t)(secs * 1e6);
  for (int i = 0; i < threads; i++) {
    ws[i].nconns = nconn / threads + (i < nconn % threads ? 1 : 0);
    ws[i].hist = calloc(HIST_BUCKETS, sizeof(uint32_t));
    pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
  }
  uint64_t req = 0, non2xx = 0, errors = 0, last = g_t0;
  uint32_t *hist = calloc(HIST_BUCKETS, sizeof(uint32_t));
  for (int i = 0; i < threads; i++) {
    pthread_join(ws[i].tid, NULL);
    req += ws[i].requests;
    non2xx += ws[i].non2xx;
    errors += ws[i].errors;
    if (ws[i].last_us > last) last = ws[i].last_us;
    for (int b = 0; b < HIST_BUCKETS; b++) hist[b] += ws[i].hist[b];
  }
  /* With -n or -B the run ends after so many requests: rate over the time until the last response. */
  double elapsed = (double)((g_limit > 0 && last < g_deadline ? last : g_deadline) - g_t0) / 1e6;
  printf("{\"method\":\"%s\",\"requests\":%llu,\"seconds\":%.3f,\"rps\":%.2f,\"non2xx\":%llu,\"errors\":%llu,\"p50_us\":%.0f,\"p99_us\":%.0f}\n",
         method, (unsigned long long)req, elapsed, (double)req / elapsed, (unsigned long long)non2xx, (unsigned long long)errors,
         percentile(hist, req, 0.50), percentile(hist, req, 0.99));
  return 0;
}
