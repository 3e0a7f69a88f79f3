// A C++ program using etcd_txn with designated initialisers (C++20):
// the header stays C and C++ clean. Compiled only, by make check-header.
#include <cstring>

#include "etcd-api.h"

int fenced_put(etcd_session s, const char *leadership, const char *value)
{
    etcd_compare still_leader{.target = ETCD_CMP_LEADER,
                              .op = ETCD_CMP_EQUAL,
                              .key = leadership,
                              .value = nullptr,
                              .value_len = 0,
                              .number = 0};
    etcd_txn_op put{.kind = ETCD_TXN_PUT,
                    .flags = 0,
                    .key = "jobs/result",
                    .value = value,
                    .value_len = std::strlen(value),
                    .lease = 0};
    etcd_txn_op get{.kind = ETCD_TXN_GET,
                    .flags = ETCD_PREFIX | ETCD_KEYS_ONLY,
                    .key = "jobs",
                    .value = nullptr,
                    .value_len = 0,
                    .lease = 0};
    int written = 0;
    etcd_txn_result *results = nullptr;
    size_t n = 0;
    if (etcd_txn(s, &still_leader, 1, &put, 1, &get, 1, &written, &results, &n, nullptr) != ETCD_OK)
        return -1;
    etcd_txn_results_free(results, n);
    return written;
}
