#include "common/digest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace cw {

Sha256 sha256(std::string_view data)
{
    Sha256 digest{};
    unsigned int length = 0;
    EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
    return digest;
}

bool constant_time_equal(const Sha256& left, const Sha256& right)
{
    return CRYPTO_memcmp(left.data(), right.data(), left.size()) == 0;
}

}  // namespace cw
