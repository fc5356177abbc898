-- 0016: soft launch. Which group a conversation was put in when it started (kept for
-- good): 'bot' (the bot answers) or 'people' (straight to people, the bot silent).
-- NULL: started before soft launch existed (the bot's, as then).
ALTER TABLE conversations ADD COLUMN launch_group TEXT CHECK (launch_group IN ('bot', 'people'));
