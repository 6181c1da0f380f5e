/* asw-sign: the C headers bindgen reads to declare libxml2 / libxmlsec1 (OpenSSL backend). */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/errors.h>
#include <xmlsec/xmltree.h>
#include <xmlsec/keys.h>
#include <xmlsec/list.h>
#include <xmlsec/transforms.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/strings.h>
#include <xmlsec/openssl/app.h>
#include <xmlsec/openssl/crypto.h>

/* xmlSecSize is a macro (unsigned int with XMLSEC_NO_SIZE_T, size_t without): give it a type. */
typedef xmlSecSize aswXmlSecSize;
