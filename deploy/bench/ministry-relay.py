#!/usr/bin/env python3
"""The relay a ministry would write instead of aswhub: the benchmark's baseline (issue #12).

It takes documents from one queue, parses them with lxml (no entities, no network), validates
them against the ASW envelope schema, signs them with an enveloped XML signature (signxml,
RSA-SHA256, the signer's certificate in KeyInfo), publishes each to another queue with publisher
confirms and acknowledges the input only then. No journal, no duplicate check, no business rules,
no receipts: what a careful programmer writes in an afternoon with the usual libraries. Run as
PROCESSES processes (two: one per core of the benchmark machine), each with its own connection.

    ministry-relay.py URL IN_QUEUE OUT_QUEUE KEY.pem CERT.pem SCHEMA.xsd COUNT [PROCESSES]

It exits when the processes together have relayed COUNT documents, printing one line:
`relayed N in S s` (from the first document taken to the last confirm). A document that fails
to parse, validate or sign is rejected (not requeued) and counted as done, as such a relay would.
"""

import multiprocessing
import sys
import time

import pika
import signxml
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree


def work(url, in_queue, out_queue, key_file, cert_file, schema_file, total, done, first, last):
    # The key is loaded once: loading a PEM RSA key checks it (tens of milliseconds).
    with open(key_file, "rb") as f:
        key = load_pem_private_key(f.read(), None)
    with open(cert_file, "rb") as f:
        cert = f.read()
    schema = etree.XMLSchema(etree.parse(schema_file))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    signer = signxml.XMLSigner(
        method=signxml.methods.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    )
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_qos(prefetch_count=16)

    def on_message(ch, method, properties, body):
        with first.get_lock():
            if first.value == 0.0:
                first.value = time.monotonic()
        try:
            document = etree.fromstring(body, parser)
            schema.assertValid(document)
            signed = signer.sign(document, key=key, cert=cert)
            out = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
        except Exception:  # noqa: BLE001 - a bad document is refused, whatever the library says
            ch.basic_reject(method.delivery_tag, requeue=False)
        else:
            # With confirms on, basic_publish returns once the broker confirmed it.
            ch.basic_publish(
                "",
                out_queue,
                out,
                pika.BasicProperties(delivery_mode=2, message_id=properties.message_id),
                mandatory=True,
            )
            ch.basic_ack(method.delivery_tag)
        with done.get_lock():
            done.value += 1
            if done.value == total:
                last.value = time.monotonic()

    channel.basic_consume(in_queue, on_message)
    # Until the processes together are done (the last document may go to the other one).
    while done.value < total:
        connection.process_data_events(time_limit=0.1)
    connection.close()


def main(argv):
    if len(argv) not in (8, 9):
        sys.exit(__doc__)
    url, in_queue, out_queue, key, cert, schema, count = argv[1:8]
    processes = int(argv[8]) if len(argv) == 9 else 2
    count = int(count)
    done = multiprocessing.Value("q", 0)
    first = multiprocessing.Value("d", 0.0)
    last = multiprocessing.Value("d", 0.0)
    workers = [
        multiprocessing.Process(
            target=work,
            args=(url, in_queue, out_queue, key, cert, schema, count, done, first, last),
        )
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if any(w.exitcode != 0 for w in workers):
        sys.exit("a relay process failed")
    print(f"relayed {done.value} in {last.value - first.value:.3f} s")


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    main(sys.argv)
