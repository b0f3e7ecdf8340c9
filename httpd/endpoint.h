/*
 * One [endpoint PATH]: the request pipeline of DESIGN §7, cheapest checks
 * first:
 *
 *   method -> content type -> API key (with per-address lockout) ->
 *   Origin/Referer -> rate limit -> body (size, parse) -> honeypot ->
 *   CSRF -> required fields and addresses -> Idempotency-Key ->
 *   templates -> dry run, or submit to the relayer (queue or sync).
 *
 * Each check answers the client itself when it refuses (endpoint.cc);
 * from the body on, the work is in submission.cc. Per-endpoint state that
 * must survive a reload (rate buckets, idempotency records) lives in an
 * EndpointState carried over by path.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "apikey.h"
#include "clientip.h"
#include "common/config.h"
#include "common/log.h"
#include "common/message.h"
#include "common/stats.h"
#include "common/submit.h"
#include "form.h"
#include "idempotency.h"
#include "ratelimit.h"
#include "server.h"
#include "tmpl.h"

namespace posthorn::http {

/* Process-wide services an endpoint uses (they outlive every endpoint). */
struct Services {
	Submitter &submitter;
	Stats &stats;
	AuthLockout &lockout;
};

/* State that outlives a reload of the same path. */
struct EndpointState {
	TokenBuckets rate;
	IdempotencyCache idempotency;
	EndpointState(const EndpointConfig &cfg)
	    : rate(cfg.rate_limit), idempotency(cfg.idempotency_cache_size) {}
	void update(const EndpointConfig &cfg);
};

/* One request on its way through the pipeline. */
struct Request {
	std::shared_ptr<Exchange> ex;
	std::string id;          /* submission id (UUID), in every log line */
	IpAddr client;
	double started = 0;      /* monotonic */
	bool html = false;       /* the client prefers text/html */
	std::string key_id;      /* API key identity (digest hex); never logged */
	std::string media_type;
	std::string boundary;
	Fields fields;
	std::vector<FilePart> files;
	bool has_override = false;
	std::vector<std::string> to_override;
	std::string idempotency; /* cache key while claimed */
};

class Endpoint : public std::enable_shared_from_this<Endpoint> {
public:
	Endpoint(const EndpointConfig &cfg, const HttpConfig &http, bool strip_default,
	    std::shared_ptr<EndpointState> state, Services svc);
	void handle(const std::shared_ptr<Exchange> &ex);
	const EndpointConfig &config() const { return cfg_; }
	bool api() const { return cfg_.auth == EndpointAuth::api_key; }

private:
	/* endpoint.cc: the gates before the body */
	bool check_method(Request &rq);
	bool check_content_type(Request &rq);
	bool check_api_key(Request &rq);
	bool check_origin(Request &rq);
	bool check_rate(Request &rq);
	bool read_body(Request &rq);
	bool read_form(Request &rq, std::string_view body);
	bool read_json(Request &rq, std::string_view body);

	/* submission.cc: from the fields to the answer */
	bool honeypot(Request &rq);
	bool check_csrf(Request &rq);
	bool validate(Request &rq);
	void field_problems(const Request &rq, std::vector<std::pair<std::string, std::string>> &bad);
	bool claim_idempotency(Request &rq);
	Message prepare(const Request &rq) const;
	std::string render_body(const Fields &fields) const;
	Reply dry_run_reply(const Request &rq, const Message &m) const;
	Reply success_reply(const Request &rq) const;
	void submit(const std::shared_ptr<Request> &rq);
	void submitted(Request &rq, const SubmitResult &r);
	void failed(Request &rq, const char *error_class, const std::string &detail);

	/* Answer: content negotiation, idempotency bookkeeping, send. */
	void finish(Request &rq, Reply reply, std::string_view code = {});
	void refuse(Request &rq, int status, std::string_view code, std::string_view message);
	std::string form_for_log(const Request &rq) const;

	template <typename... F>
	void log(LogLevel level, std::string_view msg, const Request &rq, F &&...extra) const
	{
		if (strip_ip_)
			log_event(level, msg, {LogField("endpoint", cfg_.path), LogField("submission_id", rq.id),
			    LogField(extra)...});
		else
			log_event(level, msg, {LogField("endpoint", cfg_.path), LogField("submission_id", rq.id),
			    LogField("client_ip", rq.client.str()), LogField(extra)...});
	}

	EndpointConfig cfg_;
	std::shared_ptr<EndpointState> state_;
	Services svc_;
	ProxySet proxies_;
	bool strip_ip_;
	ApiKeys keys_;
	Template subject_, body_;
	std::set<std::string> used_;  /* fields the templates use, and structural ones */
	std::string email_field_, reply_to_field_;
	std::string envelope_from_;
	std::vector<std::string> recipients_;
};

} // namespace posthorn::http
