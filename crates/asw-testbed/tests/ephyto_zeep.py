"""Drives the simulated IPPC ePhyto Hub with zeep, an independent SOAP client built from the
hub's WSDL: VN delivers three certificates to TH; TH lists, pulls and settles them (plain,
with a warning, failed); VN tracks them; a delivery claiming another country is a fault.
Arguments: WSDL URL, PKI directory, CA file. Prints one JSON object."""
import base64
import json
import sys

import requests
import zeep
from zeep.transports import Transport

wsdl, url, pki, ca = sys.argv[1:5]
BINDING = "{http://ephyto.ippc.int/}DeliveryServiceSoapBinding"


def service(country):
    session = requests.Session()
    session.cert = (f"{pki}/client-{country}.pem", f"{pki}/client-{country}-key.pem")
    session.verify = ca
    # Not REQUESTS_CA_BUNDLE and the like, which would override verify (and no proxies).
    session.trust_env = False
    client = zeep.Client(wsdl, transport=Transport(session=session))
    return client.create_service(BINDING, url)


vn, th = service("VN"), service("TH")
out = {"delivered": [], "headers": [], "contents": [], "tracking": {}}
certificate = open(sys.argv[5], "rb").read()
for i in range(3):
    header = vn.DeliverEnvelope(env={
        "From": "VN", "To": "TH", "CertificateType": 851, "CertificateStatus": 70,
        "NPPOCertificateNumber": f"VN-ZEEP-{i}",
        "Content": base64.b64encode(certificate).decode(),
    })
    out["delivered"].append([header.hubDeliveryNumber, header.HUBTrackingInfo])
numbers = [n for n, _ in out["delivered"]]
for h in th.GetImportEnvelopeHeaders(countryCode="TH"):
    out["headers"].append([h.hubDeliveryNumber, h.From, h.NPPOCertificateNumber])
for n in numbers:
    env = th.PULLSingleImportEnvelope(hubTrackingNumber=n)
    out["contents"].append(base64.b64decode(env.Content) == certificate)
th.AcknowledgeEnvelopeReceipt(hubTrackingNumber=numbers[0])
th.AdvancedAcknowledgeEnvelopeReceipt(hubTrackingNumber=numbers[1], warningMessage="SPS-XSD line 12")
th.AcknowledgeFailedEnvelopeReceipt(hubTrackingNumber=numbers[2], message="not XML")
for n in numbers:
    t = vn.GetEnvelopeTrackingInfo(hubTrackingNumber=n)
    out["tracking"][n] = [t.HUBTrackingInfo, t.hubDeliveryErrorMessage]
out["after"] = len(th.GetImportEnvelopeHeaders(countryCode="TH") or [])
try:
    th.DeliverEnvelope(env={
        "From": "VN", "To": "TH", "CertificateType": 851, "CertificateStatus": 70,
        "NPPOCertificateNumber": "FORGED", "Content": "x",
    })
    out["forged"] = "accepted"
except zeep.exceptions.Fault as fault:
    out["forged"] = fault.message
print(json.dumps(out))
