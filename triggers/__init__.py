"""Tekton Triggers for taskhub: the domain core, with no web framework, database or hub import.

- admission.parse_resource: a Triggers manifest admitted as upstream's webhook admits it (InvalidResource).
- sink.answer_event: the sink's HTTP answer (202 / 400) for an event, before anything runs.
- engine.TriggersEngine.process_event: what an event does, trigger by trigger (EventOutcome).
- ports: the Protocols the hub implements (TriggersStore, SecretStore, InterceptorHTTP);
  http_client.RequestsInterceptorHTTP is the real InterceptorHTTP.
"""
