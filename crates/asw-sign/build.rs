//! Build script: finds libxmlsec1 (OpenSSL backend) and libxml2 with pkg-config, links them, and
//! generates the Rust declarations of the few C functions and structs `src/ffi` uses.
//!
//! The bindings are generated from the installed headers with the installed defines (Debian's
//! xmlsec1 1.2.37 needs `XMLSEC_NO_SIZE_T`, which changes the size of `xmlSecSize`), so struct
//! layouts such as `xmlSecDSigCtx` always match the library that is linked.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/ffi/wrapper.h");
    let library = match pkg_config::Config::new()
        .atleast_version("1.2.30")
        .probe("xmlsec1-openssl")
    {
        Ok(library) => library,
        Err(e) => {
            eprintln!(
                "asw-sign needs libxmlsec1 with the OpenSSL backend and its headers \
                 (Debian: apt-get install libxmlsec1-dev libxmlsec1-openssl pkg-config): {e}"
            );
            std::process::exit(1);
        }
    };

    let mut builder = bindgen::Builder::default()
        .header("src/ffi/wrapper.h")
        .rust_edition(bindgen::RustEdition::Edition2024)
        .allowlist_function("xmlSecInit")
        .allowlist_function("xmlSecCheckVersionExt")
        .allowlist_function("xmlSecErrorsSetCallback")
        .allowlist_function("xmlSecErrorsDefaultCallbackEnableOutput")
        .allowlist_function("xmlSecOpenSSLAppInit")
        .allowlist_function("xmlSecOpenSSLInit")
        .allowlist_function("xmlSecOpenSSLAppKeyLoadMemory")
        .allowlist_function("xmlSecOpenSSLAppKeyCertLoadMemory")
        .allowlist_function("xmlSecOpenSSLTransform(Sha256|RsaSha256|EcdsaSha256)GetKlass")
        .allowlist_function("xmlSecTransform(ExclC14N|Enveloped)GetKlass")
        .allowlist_function("xmlSecKeyDestroy")
        .allowlist_function("xmlSecDSigCtx(Create|Destroy|Sign|Verify)")
        .allowlist_function("xmlSecDSigCtxEnable(Reference|Signature)Transform")
        .allowlist_function("xmlSecPtrListGet(Size|Item)")
        .allowlist_function("xmlSecTmpl.*")
        .allowlist_function("xmlSecCheckNodeName")
        .allowlist_function("xmlSecFindNode")
        .allowlist_function("xmlInitParser")
        .allowlist_function("xmlReadIO")
        .allowlist_function("xmlFreeDoc")
        .allowlist_function("xmlDocGetRootElement")
        .allowlist_function("xmlLastElementChild")
        .allowlist_function("xmlAddChild")
        .allowlist_function("xmlNewDocText")
        .allowlist_function("xmlFreeNode")
        .allowlist_function("xmlOutputBufferCreateIO")
        .allowlist_function("xmlFindCharEncodingHandler")
        .allowlist_function("xmlSaveFormatFileTo")
        .allowlist_type("xmlParserOption")
        .allowlist_function("xmlSetStructuredErrorFunc")
        .allowlist_function("__xmlGenericError")
        .allowlist_function("__xmlGenericErrorContext")
        .allowlist_function("__xmlStructuredError")
        .allowlist_function("__xmlStructuredErrorContext")
        .allowlist_var("XMLSEC_VERSION_(MAJOR|MINOR|SUBMINOR)")
        .allowlist_type("xmlSecCheckVersionMode")
        .allowlist_type("xmlSecDSigStatus")
        .allowlist_type(
            "xml(SecKey|SecDSigCtx|SecDSigReferenceCtx|Doc|Node|Error|Char|SecTransformUriType)",
        )
        .allowlist_type("aswXmlSecSize")
        .allowlist_var("XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS")
        .allowlist_var("xmlSecTransformUriTypeEmpty")
        .allowlist_type("xmlSecKeyDataFormat")
        .layout_tests(true)
        .derive_debug(false)
        .derive_default(false)
        .generate_comments(false)
        .prepend_enum_name(false);
    for path in &library.include_paths {
        builder = builder.clang_arg(format!("-I{}", path.display()));
    }
    for (name, value) in &library.defines {
        builder = builder.clang_arg(match value {
            Some(value) => format!("-D{name}={value}"),
            None => format!("-D{name}"),
        });
    }
    let bindings = match builder.generate() {
        Ok(bindings) => bindings,
        Err(e) => {
            eprintln!(
                "asw-sign: generating the libxmlsec1 bindings failed (libclang-dev installed?): {e}"
            );
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("bindings.rs");
    if let Err(e) = bindings.write_to_file(&out) {
        eprintln!("asw-sign: writing {}: {e}", out.display());
        std::process::exit(1);
    }
}
