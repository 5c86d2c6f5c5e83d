/* sign.c — CMS (PKCS #7) signature of a configuration profile with a TLS
 * certificate, the way Apple devices verify profiles ("Verified" when the chain
 * is trusted). The certificate file is a PEM chain, leaf first. */
#include "httpd/httpd.h"
#include "common/log.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>

int httpd_sign_profile(const char *cert_file, const char *key_file, const struct buf *in,
		       struct buf *out)
{
	int ret = -1;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	STACK_OF(X509) *chain = sk_X509_new_null();
	CMS_ContentInfo *cms = NULL;
	BIO *data = NULL, *der = NULL;
	FILE *fp = fopen(cert_file, "r");
	if (fp != NULL) {
		cert = PEM_read_X509(fp, NULL, NULL, NULL);
		X509 *extra;
		while (cert != NULL && chain != NULL &&
		       (extra = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
			sk_X509_push(chain, extra);
		fclose(fp);
	}
	if ((fp = fopen(key_file, "r")) != NULL) {
		key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
		fclose(fp);
	}
	ERR_clear_error();   /* the end of the PEM chain is an "error" */
	if (cert == NULL || key == NULL || chain == NULL) {
		log_warn("mobileconfig: cannot read certificate %s or key %s; the profile goes "
			 "out unsigned", cert_file, key_file);
		goto out;
	}
	data = BIO_new_mem_buf(buf_data(in), (int)buf_len(in));
	cms = data != NULL ? CMS_sign(cert, key, chain, data, CMS_BINARY | CMS_NOSMIMECAP) : NULL;
	der = BIO_new(BIO_s_mem());
	if (cms == NULL || der == NULL || i2d_CMS_bio(der, cms) != 1) {
		log_warn("mobileconfig: signing with %s failed; the profile goes out unsigned",
			 cert_file);
		ERR_clear_error();
		goto out;
	}
	char *p;
	long len = BIO_get_mem_data(der, &p);
	if (len > 0 && buf_append(out, p, (size_t)len) == 0)
		ret = 0;
out:
	BIO_free(der);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	X509_free(cert);
	return ret;
}
