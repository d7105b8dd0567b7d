/* pw/service.h: the policy-worker process: Kafka intake -> decode -> execute -> replies.
 *
 * Ties the consumer (pw/intake.h), the executor (pw/exec.h) and the producer
 * (pw/producer.h) together on one loop: every message gets exactly one terminal reply
 * (or a dead-letter message), its offset is stored only when that and every earlier
 * message of its partition are acknowledged (pw/offsets.h), partitions pause while
 * worker.inflight.max requests (or worker.uncommitted.max messages) are outstanding,
 * and SIGTERM/SIGINT drain within worker.drain.timeout.ms before a clean exit. */
#ifndef PW_SERVICE_H
#define PW_SERVICE_H

#include "pw/config.h"

/* Runs until a signal (or a fatal Kafka error).  cfg is borrowed.
 * Returns the process exit code: 0 clean shutdown, 1 fatal runtime error,
 * 2 a component refused the configuration (message on stderr as a log line). */
int pw_service_run(const pw_config *cfg);

#endif
