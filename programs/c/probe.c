// c-probe: a C program built for WASI preview 1 (clang, wasi-libc) and
// natively from the same source, to compare the two.
//
//   c-probe hello [ARG...]   prints its arguments and $GREETING, exits 3
//   c-probe files DIR        writes, reads back, lists and removes files in DIR
//   c-probe serve N [ADDR]   answers N HTTP requests, then exits 0: under
//                            WASI on descriptor 3, the listener the runtime
//                            opened for it (wasabi run --allow-listen=ADDR);
//                            natively on ADDR
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#ifndef __wasi__
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

static int hello(int argc, char **argv) {
    printf("hello from C with %d arguments\n", argc);
    for (int i = 0; i < argc; i++) printf("arg %d: %s\n", i, argv[i]);
    const char *greeting = getenv("GREETING");
    printf("GREETING=%s\n", greeting ? greeting : "(unset)");
    printf("HOME=%s\n", getenv("HOME") ? "(set)" : "(unset)");
    return 3;
}

static int compare(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int files(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/c-probe", dir);
    if (mkdir(path, 0755) != 0) { perror("mkdir"); return 1; }
    for (int i = 0; i < 3; i++) {
        char name[4200];
        snprintf(name, sizeof name, "%s/file-%d.txt", path, i);
        FILE *f = fopen(name, "w");
        if (!f) { perror("fopen"); return 1; }
        fprintf(f, "line %d\n", i);
        fclose(f);
    }
    char name[4200];
    snprintf(name, sizeof name, "%s/file-1.txt", path);
    FILE *f = fopen(name, "r");
    char line[64] = {0};
    if (!f || !fgets(line, sizeof line, f)) { perror("read"); return 1; }
    fclose(f);
    printf("read back: %s", line);
    DIR *d = opendir(path);
    if (!d) { perror("opendir"); return 1; }
    char *names[16];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 16)
        if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], compare);
    for (int i = 0; i < n; i++) {
        printf("entry: %s\n", names[i]);
        char victim[4400];
        snprintf(victim, sizeof victim, "%s/%s", path, names[i]);
        unlink(victim);
        free(names[i]);
    }
    if (rmdir(path) != 0) { perror("rmdir"); return 1; }
    struct stat st;
    printf("removed: %s\n", stat(path, &st) != 0 && errno == ENOENT ? "yes" : "no");
    return 0;
}

static int listener(const char *addr) {
#ifdef __wasi__
    (void)addr;
    return 3;
#else
    char host[64];
    int port = 0;
    if (!addr || sscanf(addr, "%63[^:]:%d", host, &port) != 2) return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) return -1;
    return fd;
#endif
}

static int serve(int count, const char *addr) {
    int l = listener(addr);
    if (l < 0) { perror("listen"); return 1; }
    printf("serving %d requests\n", count);
    fflush(stdout);
    for (int served = 0; served < count; served++) {
        int c = accept(l, NULL, NULL);
        if (c < 0) { perror("accept"); return 1; }
        char req[4096];
        size_t got = 0;
        while (got < sizeof req - 1) {
            ssize_t n = recv(c, req + got, sizeof req - 1 - got, 0);
            if (n <= 0) break;
            got += (size_t)n;
            req[got] = 0;
            if (strstr(req, "\r\n\r\n")) break;
        }
        req[got] = 0;
        char *end = strchr(req, '\r');
        if (end) *end = 0;
        char body[4200];
        int len = snprintf(body, sizeof body, "hello from C, request %d: %s\n", served + 1, req);
        char head[128];
        int hlen = snprintf(head, sizeof head,
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
                            len);
        send(c, head, (size_t)hlen, 0);
        send(c, body, (size_t)len, 0);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "hello";
    if (strcmp(mode, "hello") == 0) return hello(argc - 1, argv + 1);
    if (strcmp(mode, "files") == 0 && argc > 2) return files(argv[2]);
    if (strcmp(mode, "serve") == 0 && argc > 2) return serve(atoi(argv[2]), argc > 3 ? argv[3] : NULL);
    fprintf(stderr, "usage: c-probe hello|files DIR|serve N [ADDR]\n");
    return 2;
}
