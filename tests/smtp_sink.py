"""A real SMTP server for the e-mail tests (aiosmtpd, Debian's python3-aiosmtpd).

Usage: smtp_sink.py DIR [--port N] [--refuse-first N] [--hold-reply-s S]

Each accepted message is written to DIR as NNNN.json: the envelope's
recipients, the headers the tests check and the decoded plain-text and HTML
parts (written under a temporary name, then renamed, so a reader never sees
half a message). Prints
"ready PORT" on stdout once it listens. --refuse-first N answers the first N
messages "451 try again later" (a transient refusal); --hold-reply-s S writes
each message to DIR and only then waits S seconds before answering 250, which
opens the window between the server having the message and the client
knowing it (the tests kill the client inside it).
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, refuse_first, hold_reply_s):
        self.directory = directory
        self.refuse_left = refuse_first
        self.hold_reply_s = hold_reply_s
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_left > 0:
            self.refuse_left -= 1
            return "451 4.3.0 try again later"
        self.count += 1
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "rcpt_to": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"]),
            "list_unsubscribe": str(message["List-Unsubscribe"]),
            "list_unsubscribe_post": str(message["List-Unsubscribe-Post"]),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        name = os.path.join(self.directory, "%04d.json" % self.count)
        with open(name + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name)
        if self.hold_reply_s > 0:
            await asyncio.sleep(self.hold_reply_s)
        return "250 2.0.0 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--refuse-first", type=int, default=0)
    parser.add_argument("--hold-reply-s", type=float, default=0.0)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    port = args.port
    if port == 0:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    controller = Controller(
        Sink(args.dir, args.refuse_first, args.hold_reply_s),
        hostname="127.0.0.1",
        port=port,
    )
    controller.start()
    print("ready %d" % port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
