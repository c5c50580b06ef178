/* Test helper: serves a saved event stream over an events socket the way
 * `provium --events-socket` does. Waits (10 s at most) for one client, sends
 * every frame of FILE, closes. Usage: emit-socket PATH FILE */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include "frame.h"
#include "sink.h"

int main(int argc, char **argv)
{
	struct pv_sink *s;
	struct pv_err err;
	struct frame_dec d;
	const uint8_t *body;
	uint32_t len;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: emit-socket PATH FILE\n");
		return 2;
	}
	if (pv_sink_open_socket(argv[1], &s, &err) < 0) {
		fprintf(stderr, "emit-socket: %s\n", err.msg);
		return 1;
	}
	{
		struct pollfd p = { .fd = pv_sink_poll_fd(s), .events = POLLIN };
		if (poll(&p, 1, 10000) != 1) {
			fprintf(stderr, "emit-socket: no client connected\n");
			pv_sink_close(s);
			return 1;
		}
		pv_sink_service(s);
	}
	fd = open(argv[2], O_RDONLY);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	frame_dec_init(&d);
	while (frame_dec_read_fd(&d, fd) > 0)
		while (frame_dec_next(&d, &body, &len, NULL, NULL) == 1)
			pv_sink_write(s, body - 4, len + 4, NULL);
	close(fd);
	frame_dec_release(&d);
	pv_sink_close(s);
	return 0;
}
