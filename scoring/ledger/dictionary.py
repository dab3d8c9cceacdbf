"""Dictionary 1 of compact records (format bytes 1 and 2), frozen.

Text that decision and outcome payloads repeat, in their canonical JSON form, so that the
compressor (deflate in format 1, Zstandard in format 2) refers back to it instead of spelling it
out in every row. Composed once from the code's own
vocabulary as it stood when compact records were introduced: the model's reason texts in both
languages (the history ones for one entity: the others differ in a few words), the exam texts,
and the skeleton of an outcome and of a decision with every key and feature name (most used
last: nearer is cheaper). It only helps compression: a payload that shares nothing with it is
stored as well, just larger.

FROZEN: every compact record ever written needs exactly these bytes to be read back
(tests/test_ledger_compact.py pins their SHA-256). A better dictionary is a new format byte
with its own entry in :data:`scoring.ledger.record.DICTIONARIES`, beside this one.
"""

from __future__ import annotations

DICTIONARY_1 = (
    'Risk profile of the port","message_es":"Perfil de riesgo del puerto de entrada"},'
    '{"code":"MODEL_PORT_CODE","contribution":0.1,"message_en":"'
    'Transport mode","message_es":"Modo de transporte"},{"code":"MODEL_MODE_CODE",'
    '"contribution":0.1,"message_en":"'
    'Country of origin AB","message_es":"País de origen AB"},{"code":"MODEL_ORIGIN_CODE",'
    '"contribution":0.1,"message_en":"'
    'Country of export AB","message_es":"País de exportación AB"},'
    '{"code":"MODEL_EXPORT_CODE","contribution":0.1,"message_en":"'
    'Export country differs from country of origin","message_es":"El país de exportación '
    'difiere del de origen"},{"code":"MODEL_EXPORT_DIFFERS","contribution":0.1,'
    '"message_en":"'
    '1 transshipment port(s) declared","message_es":"1 puerto(s) de transbordo '
    'declarados"},{"code":"MODEL_TRANSSHIPMENT_COUNT","contribution":0.1,"message_en":"'
    '1 goods line(s)","message_es":"1 partida(s) de mercancía"},'
    '{"code":"MODEL_GOODS_LINE_COUNT","contribution":0.1,"message_en":"'
    'Principal HS chapter 01","message_es":"Capítulo arancelario principal 01"},'
    '{"code":"MODEL_PRINCIPAL_HS_CHAPTER","contribution":0.1,"message_en":"'
    'Principal HS heading 0001","message_es":"Partida arancelaria principal 0001"},'
    '{"code":"MODEL_PRINCIPAL_HS_HEADING","contribution":0.1,"message_en":"'
    '1 distinct HS chapter(s)","message_es":"1 capítulo(s) arancelario(s) distintos"},'
    '{"code":"MODEL_HS_CHAPTER_COUNT","contribution":0.1,"message_en":"'
    '100% of goods lines are chemicals (HS 28, 29, 38)","message_es":"100% de las '
    'partidas son químicos (cap. 28, 29, 38)"},{"code":"MODEL_CHEMICAL_LINE_SHARE",'
    '"contribution":0.1,"message_en":"'
    '1 line(s) declare a CAS number","message_es":"1 partida(s) declaran número CAS"},'
    '{"code":"MODEL_CAS_LINE_COUNT","contribution":0.1,"message_en":"'
    '1 line(s) declare an invalid CAS number","message_es":"1 partida(s) declaran un '
    'número CAS inválido"},{"code":"MODEL_INVALID_CAS_LINES","contribution":0.1,'
    '"message_en":"'
    'Total gross weight 1 kg","message_es":"Peso bruto total 1 kg"},'
    '{"code":"MODEL_TOTAL_WEIGHT_KG","contribution":0.1,"message_en":"'
    'Total declared value 1 USD","message_es":"Valor declarado total 1 USD"},'
    '{"code":"MODEL_TOTAL_VALUE_USD","contribution":0.1,"message_en":"'
    'Declared value of 1.00 USD/kg","message_es":"Valor declarado de 1.00 USD/kg"},'
    '{"code":"MODEL_VALUE_PER_KG","contribution":0.1,"message_en":"'
    'First shipment of this shipper","message_es":"Primer embarque del remitente"},'
    '{"code":"MODEL_SHIPPER_AGE_DAYS","contribution":0.1,"message_en":"'
    '1 shipment(s) by this shipper in the prior 30 days","message_es":"1 embarque(s) del '
    'remitente en los 30 días previos"},{"code":"MODEL_SHIPPER_COUNT_30D",'
    '"contribution":0.1,"message_en":"'
    '1 shipment(s) by this shipper in the prior 90 days","message_es":"1 embarque(s) del '
    'remitente en los 90 días previos"},{"code":"MODEL_SHIPPER_COUNT_90D",'
    '"contribution":0.1,"message_en":"'
    '1 shipment(s) by this shipper in the prior 365 days","message_es":"1 embarque(s) '
    'del remitente en los 365 días previos"},{"code":"MODEL_SHIPPER_COUNT_365D",'
    '"contribution":0.1,"message_en":"'
    '1 earlier inspection(s) of this shipper","message_es":"1 inspección(es) previas del '
    'remitente"},{"code":"MODEL_SHIPPER_INSPECTIONS","contribution":0.1,"message_en":"'
    '1 earlier finding(s) for this shipper","message_es":"1 hallazgo(s) previos del '
    'remitente"},{"code":"MODEL_SHIPPER_POSITIVES","contribution":0.1,"message_en":"'
    'Historical finding rate of this shipper: 100.0%","message_es":"Tasa histórica de '
    'hallazgos del remitente: 100.0%"},{"code":"MODEL_SHIPPER_POSITIVE_RATE",'
    '"contribution":0.1,"message_en":"'
    'No earlier findings for this shipper","message_es":"Sin hallazgos previos del '
    'remitente"},{"code":"MODEL_SHIPPER_DAYS_SINCE_POSITIVE","contribution":0.1,'
    '"message_en":"'
    '1 watched synthesis route(s) received by this shipper in 90 days","message_es":"1 '
    'ruta(s) de síntesis vigiladas recibidas del remitente en 90 días"},'
    '{"code":"MODEL_SHIPPER_ROUTE_FAMILIES_90D","contribution":0.1,"message_en":"'
    "Complementary items received by this shipper in 90 days (precursor and reagent, or "
    'tableting equipment)","message_es":"Sustancias complementarias recibidas del '
    'remitente en 90 días (precursor y reactivo, o equipo de tableteo)"},'
    '{"code":"MODEL_SHIPPER_COMPLEMENTARY_90D","contribution":0.1,"message_en":"'
    'Watchlist evidence (strength 1.00)","message_es":"Evidencia de lista de vigilancia '
    '(fuerza 1.00)"},{"code":"MODEL_WATCHLIST_MAX_STRENGTH","contribution":0.1,'
    '"message_en":"'
    'Watchlist evidence across goods lines","message_es":"Evidencia de lista de '
    'vigilancia en varias partidas"},{"code":"MODEL_WATCHLIST_STRENGTH_SUM",'
    '"contribution":0.1,"message_en":"'
    '1 line(s) with a watched CAS","message_es":"1 partida(s) con número CAS vigilado"},'
    '{"code":"MODEL_WATCHLIST_CAS_LINES","contribution":0.1,"message_en":"'
    '1 line(s) under a watched substance\'s own HS code","message_es":"1 partida(s) con '
    'fracción arancelaria de sustancia vigilada"},'
    '{"code":"MODEL_WATCHLIST_HS_SPECIFIC_LINES","contribution":0.1,"message_en":"'
    '1 line(s) under a broad HS line of watched chemicals","message_es":"1 partida(s) en '
    'fracción genérica de químicos vigilados"},{"code":"MODEL_WATCHLIST_HS_BROAD_LINES",'
    '"contribution":0.1,"message_en":"'
    '1 line(s) name a watched substance","message_es":"1 partida(s) nombran una '
    'sustancia vigilada"},{"code":"MODEL_WATCHLIST_NAME_LINES","contribution":0.1,'
    '"message_en":"'
    '1 line(s) with a watched substance identified","message_es":"1 partida(s) con '
    'sustancia vigilada identificada"},{"code":"MODEL_WATCHLIST_IDENTIFIED_LINES",'
    '"contribution":0.1,"message_en":"'
    '1 distinct synthesis route(s) in the declaration","message_es":"1 ruta(s) de '
    'síntesis distintas en la declaración"},{"code":"MODEL_WATCHLIST_ROUTE_FAMILIES",'
    '"contribution":0.1,"message_en":"'
    '1 mismatch(es) between description, CAS and HS code","message_es":"1 '
    'incongruencia(s) entre descripción, CAS y fracción"},'
    '{"code":"MODEL_WATCHLIST_MISMATCHES","contribution":0.1,"message_en":"'
    'Value per kg 2.7 times the median of its HS heading","message_es":"Valor por kg 2.7 '
    'veces la mediana de su partida arancelaria"},{"code":"MODEL_VALUE_PER_KG_LOG_RATIO",'
    '"contribution":0.1,"message_en":"'
    " del remitente this shipper del consignatario this consignee del agente aduanal "
    "this customs broker de la ruta this route de la partida arancelaria this HS heading"
    "this sea shipment este embarque marítimo"
    "this land vehicle este vehículo de carga terrestre"
    "this air cargo consignment este envío de carga aérea"
    "this postal or courier parcel este envío postal o de mensajería"
    "an invalid CAS number un número CAS inválido"
    "a CAS number that does not agree with the HS code un número CAS que no concuerda "
    "con la fracción arancelaria"
    "a CAS number that does not agree with the description un número CAS que no "
    "concuerda con la descripción"
    "a substance name that does not agree with the HS code un nombre de sustancia que no "
    "concuerda con la fracción arancelaria"
    "a specific HS code that does not agree with the description una fracción "
    "arancelaria específica que no concuerda con la descripción"
    "a declared value per kg unusual for its HS heading un valor declarado por kg "
    "atípico para su partida arancelaria"
    '"exam":"physical_sampling","exam_reason":{"code":"EXAM_PHYSICAL_SAMPLING",'
    '"contribution":0.0,"message_en":"Physical examination with sampling for laboratory '
    'confirmation: ","message_es":"Reconocimiento físico con toma de muestras para '
    'confirmación de laboratorio: "'
    '"exam":"non_intrusive","exam_reason":{"code":"EXAM_NON_INTRUSIVE",'
    '"contribution":0.0,"message_en":"Non-intrusive inspection (X-ray or gamma scan): ",'
    '"message_es":"Inspección no intrusiva (rayos X o gamma): "'
    '"exam":"canine","exam_reason":{"code":"EXAM_CANINE","contribution":0.0,'
    '"message_en":"Canine inspection: ","message_es":"Revisión con binomio canino: "'
    '"exam":"documentary","exam_reason":{"code":"EXAM_DOCUMENTARY","contribution":0.0,'
    '"message_en":"Documentary review: ","message_es":"Revisión documental: "'
    "the goods lines identify a watched chemical substance. las partidas identifican una "
    "sustancia química sujeta a vigilancia."
    "the risk model selected  with no watched substance identified in the goods lines."
    "el modelo de riesgo seleccionó  sin identificar una sustancia vigilada en las "
    "partidas."
    '{"decision_id":"","inspected":true,"lab_confirmed":false,"notes":"",'
    '"result":"negative","shipment_id":"SHP-","substances":[],"version":1}'
    ',"lane":"yellow","lane":"red","declared":{"goods":['
    '{"caller":{"method":"mtls","name":"","roles":["admin","reporter","scorer"]},'
    '"decided_at":"2026-01-01T00:00:00.000000+00:00","decision_id":"","declared":null,'
    '"exam":"","exam_reason":null,"features":{"broker_age_days":0.0,'
    '"broker_complementary_90d":0.0,"broker_count_30d":0.0,"broker_count_365d":0.0,'
    '"broker_count_90d":0.0,"broker_days_since_positive":0.0,"broker_inspections":0.0,'
    '"broker_positive_rate":0.0,"broker_positives":0.0,"broker_route_families_90d":0.0,'
    '"cas_line_count":0.0,"chemical_line_share":0.0,"consignee_age_days":0.0,'
    '"consignee_complementary_90d":0.0,"consignee_count_30d":0.0,'
    '"consignee_count_365d":0.0,"consignee_count_90d":0.0,'
    '"consignee_days_since_positive":0.0,"consignee_has_tax_id":0.0,'
    '"consignee_inspections":0.0,"consignee_is_foreign":0.0,'
    '"consignee_positive_rate":0.0,"consignee_positives":0.0,'
    '"consignee_route_families_90d":0.0,"export_code":0.0,"export_differs":0.0,'
    '"goods_line_count":0.0,"heading_days_since_positive":0.0,"heading_inspections":0.0,'
    '"heading_positive_rate":0.0,"heading_positives":0.0,"hs_chapter_count":0.0,'
    '"invalid_cas_lines":0.0,"mode_code":0.0,"origin_code":0.0,"port_code":0.0,'
    '"principal_hs_chapter":0.0,"principal_hs_heading":0.0,'
    '"route_days_since_positive":0.0,"route_inspections":0.0,"route_positive_rate":0.0,'
    '"route_positives":0.0,"shipper_age_days":0.0,"shipper_count_30d":0.0,'
    '"shipper_count_365d":0.0,"shipper_count_90d":0.0,"shipper_days_since_positive":0.0,'
    '"shipper_inspections":0.0,"shipper_positive_rate":0.0,"shipper_positives":0.0,'
    '"total_value_usd":0.0,"total_weight_kg":0.0,"transshipment_count":0.0,'
    '"value_per_kg":0.0,"value_per_kg_log_ratio":0.0,"watchlist_cas_lines":0.0,'
    '"watchlist_hs_broad_lines":0.0,"watchlist_hs_specific_lines":0.0,'
    '"watchlist_identified_lines":0.0,"watchlist_max_strength":0.0,'
    '"watchlist_mismatches":0.0,"watchlist_name_lines":0.0,'
    '"watchlist_route_families":0.0,"watchlist_strength_sum":0.0},'
    '"goods":[{"cas_numbers":[],"declared_value_usd":0.0,"description":"",'
    '"gross_weight_kg":0.0,"hs_code":"","line_no":0,"quantity":0.0,"shipment_id":"SHP-",'
    '"unit":"KGM"}],"lane":"green","model_version":"v0001","propensity":0.0,'
    '"random_selection":false,"reasons":[],"risk_score":0.0,"rules_fired":[],'
    '"rules_version":"2026.01.1","shipment":{"broker_id":"BRK-","carrier":"",'
    '"consignee_country":"MX","consignee_id":"CNE-","consignee_name":"",'
    '"consignee_tax_id":"","container_id":"","conveyance_id":"",'
    '"declared_at":"2026-01-01T00:00:00.000000+00:00","export_country":"MX","mode":"",'
    '"origin_country":"","port_of_entry":"","shipment_id":"SHP-","shipper_country":"",'
    '"shipper_id":"SHR-","shipper_name":"","shipper_tax_id":"","transshipment_ports":[]},'
    '"thresholds":{"red":0.0,"yellow":0.0},"watchlist_hits":[{"entry_id":"",'
    '"goods_index":0,"match_type":"cas","matched_text":"","name":"","similarity":1.0}],'
    '"watchlist_version":"2026.01.1"}'
).encode()
